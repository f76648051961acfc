//! Apps' TLS certificates and their private keys. Checking them is the API's job; this only keeps them.

use sqlx::any::AnyRow;
use sqlx::Row;
use vocabulary::{AppId, CertificateId};

use crate::rows::{self, now, time_text};
use crate::{NewCertificate, Store, StoreError, StoredCertificate};

const COLUMNS: &str = "id, app_id, hosts, cert_pem, key_pem, not_after, created_at";

fn certificate_from_row(row: &AnyRow) -> Result<StoredCertificate, StoreError> {
    Ok(StoredCertificate {
        id: rows::parsed(row, "id")?,
        app: rows::parsed(row, "app_id")?,
        hosts: rows::json(row, "hosts")?,
        cert_pem: row.try_get("cert_pem")?,
        key_pem: row.try_get("key_pem")?,
        not_after: rows::time(row, "not_after")?,
        created_at: rows::time(row, "created_at")?,
    })
}

impl Store {
    pub async fn add_certificate(&self, new: NewCertificate) -> Result<StoredCertificate, StoreError> {
        let certificate = StoredCertificate {
            id: CertificateId::new(),
            app: new.app,
            hosts: new.hosts,
            cert_pem: new.cert_pem,
            key_pem: new.key_pem,
            not_after: new.not_after,
            created_at: now(),
        };
        let hosts = serde_json::to_string(&certificate.hosts)
            .map_err(|e| StoreError::Corrupt(format!("certificate hosts: {e}")))?;
        sqlx::query(&format!(
            "INSERT INTO certificates ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(certificate.id.to_string())
        .bind(certificate.app.to_string())
        .bind(hosts)
        .bind(&certificate.cert_pem)
        .bind(&certificate.key_pem)
        .bind(time_text(certificate.not_after))
        .bind(time_text(certificate.created_at))
        .execute(&self.pool)
        .await?;
        Ok(certificate)
    }

    /// The app's certificates, newest first.
    pub async fn certificates_of(&self, app: AppId) -> Result<Vec<StoredCertificate>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE app_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    /// Every app's certificates, newest first: for the route table.
    pub async fn all_certificates(&self) -> Result<Vec<StoredCertificate>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM certificates ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    /// Removes the certificate if this app has it; false if it does not.
    pub async fn remove_certificate(&self, app: AppId, id: CertificateId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM certificates WHERE id = $1 AND app_id = $2")
            .bind(id.to_string())
            .bind(app.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
