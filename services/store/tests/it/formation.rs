use std::collections::BTreeMap;

use store::FormationEntry;
use vocabulary::ProcessType;

use crate::{account, app};
use store::testing::TestDatabase;

async fn formation_inserts_then_updates_quantity_only(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let other = app(&store, &alice, "other").await;
    let web = ProcessType::web();
    let worker = ProcessType::new("worker").unwrap();
    assert!(store.formation(shop.id).await.unwrap().is_empty());
    assert!(!store.has_formation(shop.id).await.unwrap());

    store.set_formation(shop.id, &web, 1, 256 << 20).await.unwrap();
    // A later default does not change the memory of an existing row.
    store.set_formation(shop.id, &web, 3, 512 << 20).await.unwrap();
    store
        .set_formations(shop.id, &BTreeMap::from([(worker.clone(), 2)]), 128 << 20)
        .await
        .unwrap();

    let formation = store.formation(shop.id).await.unwrap();
    assert_eq!(
        formation,
        BTreeMap::from([
            (
                web.clone(),
                FormationEntry {
                    quantity: 3,
                    memory_bytes: 256 << 20
                }
            ),
            (
                worker,
                FormationEntry {
                    quantity: 2,
                    memory_bytes: 128 << 20
                }
            ),
        ])
    );
    assert!(store.has_formation(shop.id).await.unwrap());
    assert!(store.formation(other.id).await.unwrap().is_empty());

    store.set_formation(shop.id, &web, 0, 1).await.unwrap();
    assert_eq!(store.formation(shop.id).await.unwrap()[&web].quantity, 0);
}

async fn memory_too_large_for_sqlite_is_refused(store: TestDatabase) {
    let (alice, _) = account(&store, "alice").await;
    let shop = app(&store, &alice, "shop").await;
    let err = store
        .set_formation(shop.id, &ProcessType::web(), 1, u64::MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, store::StoreError::TooLarge { .. }), "{err:?}");
}

on_both_backends!(
    formation_inserts_then_updates_quantity_only,
    memory_too_large_for_sqlite_is_refused,
);
