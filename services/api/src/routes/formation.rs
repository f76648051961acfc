use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use api_contract::{FormationInfo, ScaleRequest};
use axum::extract::{Path, State};
use controller::Event;
use vocabulary::ProcessType;

use super::{app_for, Permission};
use crate::json::Json;
use crate::{ApiError, ApiState, Caller};

/// How many instances of one process type an app may ask for.
pub const QUANTITY_RANGE: RangeInclusive<i64> = 0..=100;

/// The stored formation, plus a zero line for each process type of the latest release not scaled yet (not
/// `release`: it runs once per release, never scaled).
async fn view(state: &ApiState, app: &store::App) -> Result<Vec<FormationInfo>, ApiError> {
    let mut lines: BTreeMap<ProcessType, FormationInfo> = BTreeMap::new();
    if let Some(release) = state.store.latest_release(app.id).await? {
        let scalable = release
            .processes
            .into_keys()
            .filter(|p| p.as_str() != controller::RELEASE_PROCESS);
        for process_type in scalable {
            let line = FormationInfo {
                process_type: process_type.clone(),
                quantity: 0,
                memory_bytes: state.default_memory_bytes,
            };
            lines.insert(process_type, line);
        }
    }
    for (process_type, entry) in state.store.formation(app.id).await? {
        let line = FormationInfo {
            process_type: process_type.clone(),
            quantity: entry.quantity,
            memory_bytes: entry.memory_bytes,
        };
        lines.insert(process_type, line);
    }
    Ok(lines.into_values().collect())
}

/// `GET /v1/apps/{name}/formation`
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<Vec<FormationInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Read).await?;
    Ok(axum::Json(view(&state, &app).await?))
}

/// `PATCH /v1/apps/{name}/formation` with `{"web": 2, ...}`. All-or-nothing: one invalid line changes
/// nothing. A process type must be one of the latest release's; before the first release only `web`.
pub async fn scale(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(ScaleRequest(request)): Json<ScaleRequest>,
) -> Result<axum::Json<Vec<FormationInfo>>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    if request.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to scale: send process types and quantities, e.g. {\"web\": 2}".to_owned(),
        ));
    }
    let release = state.store.latest_release(app.id).await?;
    let allowed: BTreeSet<ProcessType> = match &release {
        Some(release) => release.processes.keys().cloned().collect(),
        None => BTreeSet::from([ProcessType::web()]),
    };
    let mut quantities = BTreeMap::new();
    for (process_type, quantity) in request {
        let process_type = ProcessType::new(process_type)?;
        if process_type.as_str() == controller::RELEASE_PROCESS {
            return Err(ApiError::Invalid(
                "release is not a process type that can be scaled: its command runs once per release, \
                 before the release's instances start (use `berth run` for a one-off)"
                    .into(),
            ));
        }
        if !QUANTITY_RANGE.contains(&quantity) {
            return Err(ApiError::Invalid(format!(
                "quantity of {process_type} must be from {} to {}, not {quantity}",
                QUANTITY_RANGE.start(),
                QUANTITY_RANGE.end()
            )));
        }
        if !allowed.contains(&process_type) {
            return Err(ApiError::Invalid(match &release {
                Some(release) => format!(
                    "app {} has no process type {process_type}: release {} has {}",
                    app.name,
                    release.version,
                    allowed
                        .iter()
                        .map(ProcessType::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!(
                    "app {} has no release yet: only web can be scaled before the first deploy",
                    app.name
                ),
            }));
        }
        let quantity = u32::try_from(quantity).expect("checked against QUANTITY_RANGE");
        quantities.insert(process_type, quantity);
    }
    // Instances and memory count against the app's owner, whoever scales it.
    let current = state.store.formation(app.id).await?;
    let (mut instances, mut memory) = (0i128, 0i128);
    for (process_type, quantity) in &quantities {
        let (old, per) = current
            .get(process_type)
            .map_or((0, state.default_memory_bytes), |f| (f.quantity, f.memory_bytes));
        let delta = i128::from(*quantity) - i128::from(old);
        instances += delta;
        memory += delta * i128::from(per);
    }
    let grow = |used: u64, by: i128| u64::try_from(i128::from(used) + by).unwrap_or(0);
    super::apps::check_quota_of(&state, app.owner, |usage| store::QuotaUsage {
        instances: grow(usage.instances, instances),
        memory_bytes: grow(usage.memory_bytes, memory),
        ..usage
    })
    .await?;
    state
        .store
        .set_formations(app.id, &quantities, state.default_memory_bytes)
        .await?;
    state.controller.notify(Event::FormationChanged(app.id));
    tracing::info!(app = %app.name, account = %caller.0.name, ?quantities, "formation changed");
    let scaled: Vec<String> = quantities.iter().map(|(t, q)| format!("{t}={q}")).collect();
    let description = format!("Scaled to {}", scaled.join(", "));
    super::events::record(
        &state,
        app.id,
        store::EventKind::Scaled,
        &description,
        caller.0.name.as_str(),
    )
    .await;
    Ok(axum::Json(view(&state, &app).await?))
}
