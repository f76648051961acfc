//! The vocabulary every part of Berth shares: typed IDs (`AppId`, `ReleaseId`, `InstanceId`, `NodeId`,
//! `AccountId`), each account's host id range (`IdRange`) and names that users type (`AppName`, `AccountName`, `ProcessType`, `DomainName`), node labels and app constraints (`Label`), validated once by their
//! constructors so that code past the edge can trust them.
//!
//! This crate holds no logic beyond validation and has no IO. Every other crate may depend on it; it depends on
//! nothing of Berth's.

mod id_range;
mod ids;
mod labels;
mod names;
mod strategy;

pub use id_range::{IdRange, IdRangeError};
pub use ids::{AccountId, AppId, CertificateId, InstanceId, NodeId, ReleaseId};
pub use labels::{labels_text, Label, LabelError};
pub use names::{AccountName, AppName, DomainName, NameError, ProcessType, ReleaseVersion};
pub use strategy::DeployStrategy;
