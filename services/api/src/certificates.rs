//! Checking an uploaded certificate before it is stored: the PEM chain and key parse, the key belongs to the
//! first (leaf) certificate, it is valid now, and every DNS name it carries is one the app may serve (one of
//! its custom domains, or under one of its wildcard domains). Pure: the time is a parameter.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vocabulary::DomainName;
use x509_parser::extensions::GeneralName;

/// Why an upload was refused; each message tells the user what to fix (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("the certificate file holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("certificate {index} of the chain is not valid X.509")]
    BadCertificate { index: usize },
    #[error("the key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    #[error("the private key is of an unsupported kind (use RSA, ECDSA P-256/P-384 or Ed25519)")]
    UnsupportedKey,
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate expired at {not_after}")]
    Expired { not_after: String },
    #[error("the certificate is not valid before {not_before}")]
    NotYetValid { not_before: String },
    #[error("the certificate names no DNS host (subject alternative names)")]
    NoNames,
    #[error("the certificate names {names}, which are not custom domains of this app: add them first with `berth domains add`")]
    ForeignNames { names: String },
}

/// What is kept about a certificate that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCertificate {
    /// The DNS names of the leaf certificate, lowercased, in its order.
    pub hosts: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
}

/// Checks `cert_pem` (leaf first, then intermediates) and `key_pem` against the app's `domains` at `now`
/// (Unix seconds).
pub fn check(
    cert_pem: &str,
    key_pem: &str,
    domains: &[DomainName],
    now: i64,
) -> Result<CheckedCertificate, CertificateProblem> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| CertificateProblem::NoCertificate)?;
    let Some(leaf_der) = chain.first() else {
        return Err(CertificateProblem::NoCertificate);
    };
    for (index, der) in chain.iter().enumerate() {
        x509_parser::parse_x509_certificate(der)
            .map_err(|_| CertificateProblem::BadCertificate { index: index + 1 })?;
    }
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|_| CertificateProblem::BadCertificate { index: 1 })?;

    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| CertificateProblem::NoKey)?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| CertificateProblem::UnsupportedKey)?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing_key);
    certified
        .keys_match()
        .map_err(|_| CertificateProblem::KeyMismatch)?;

    let validity = leaf.validity();
    if now > validity.not_after.timestamp() {
        return Err(CertificateProblem::Expired {
            not_after: validity.not_after.to_string(),
        });
    }
    if now < validity.not_before.timestamp() {
        return Err(CertificateProblem::NotYetValid {
            not_before: validity.not_before.to_string(),
        });
    }

    let mut hosts = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                hosts.push(dns.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    if hosts.is_empty() {
        return Err(CertificateProblem::NoNames);
    }
    let foreign: Vec<&str> = hosts
        .iter()
        .filter(|host| !domains.iter().any(|d| d.covers(host)))
        .map(String::as_str)
        .collect();
    if !foreign.is_empty() {
        return Err(CertificateProblem::ForeignNames {
            names: foreign.join(", "),
        });
    }
    Ok(CheckedCertificate {
        hosts,
        not_after: validity.not_after.timestamp(),
    })
}
