//! A rebase: the app's current release moved onto the current stack without rebuilding. The new release has
//! the same image with its first (stack) layer replaced, and the same processes and config vars; the
//! reconcile loop rolls it out like any new release.

use std::path::PathBuf;

use image_store::{ImageStore, ImageStoreError, LayerInfo, Rebase};
use stack::StackConfig;
use store::{App, NewRelease, ReleaseKind, Store, StoreError};
use vocabulary::{AccountId, ReleaseVersion};

use crate::{ControllerHandle, Event};

/// What a rebase needs besides the store.
#[derive(Debug, Clone)]
pub struct RebaseContext {
    pub images: ImageStore,
    /// Where the current stack is recorded ([`StackConfig::stacks_dir`]).
    pub stacks_dir: PathBuf,
    pub controller: ControllerHandle,
}

/// What a rebase did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebaseOutcome {
    /// The stack layer digest of the current release's image before.
    pub old_stack: String,
    /// The current stack's layer digest.
    pub new_stack: String,
    /// The new release; `None` when the image was already on the current stack.
    pub release: Option<ReleaseVersion>,
}

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error("app {app} has no release yet: deploy it first")]
    NoRelease { app: String },
    #[error("no stack is recorded: run `berth stack build` or `berth stack pull REF` first")]
    NoStack,
    #[error("{version} of app {app} cannot be rebased: {refusal}")]
    Refused {
        app: String,
        version: ReleaseVersion,
        refusal: image_store::RebaseRefusal,
    },
    #[error("writing the rebased image")]
    Image(#[source] ImageStoreError),
    #[error("recording the release")]
    Store(#[source] StoreError),
    #[error("the rebase task failed: {0}")]
    Task(String),
}

impl RebaseError {
    /// Whether the caller asked for something that cannot be done (rather than the server failing).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::NoRelease { .. } | Self::NoStack | Self::Refused { .. }
        )
    }
}

/// Rebases `app`'s current release onto the current stack, as `by`.
pub async fn rebase(
    store: &Store,
    ctx: &RebaseContext,
    app: &App,
    by: AccountId,
) -> Result<RebaseOutcome, RebaseError> {
    let current = store
        .latest_release(app.id)
        .await
        .map_err(RebaseError::Store)?
        .ok_or_else(|| RebaseError::NoRelease {
            app: app.name.to_string(),
        })?;
    let stack_cfg = StackConfig::new(ctx.stacks_dir.clone());
    let (images, image) = (ctx.images.clone(), current.image_digest.clone());
    let tag = format!("{}-rebase-{}", app.name, short_hex(&current.image_digest));
    let (stack, outcome) = tokio::task::spawn_blocking(move || {
        let stack = stack::recorded_stack(&stack_cfg, &images).ok_or(RebaseError::NoStack)?;
        let outcome = images
            .rebase_image(&image, &stack.layer, &tag)
            .map_err(RebaseError::Image)?;
        Ok::<(LayerInfo, Rebase), RebaseError>((stack.layer, outcome))
    })
    .await
    .map_err(|e| RebaseError::Task(e.to_string()))?
    .map_err(|error| match error {
        RebaseError::Image(ImageStoreError::Rebase { refusal, .. }) => RebaseError::Refused {
            app: app.name.to_string(),
            version: current.version,
            refusal,
        },
        other => other,
    })?;

    let (manifest_digest, old_stack) = match outcome {
        Rebase::AlreadyOnStack => {
            return Ok(RebaseOutcome {
                old_stack: stack.digest.clone(),
                new_stack: stack.digest,
                release: None,
            })
        }
        Rebase::Rebased {
            manifest_digest,
            old_stack_digest,
        } => (manifest_digest, old_stack_digest),
    };
    let release = store
        .create_release_of_kind(
            NewRelease {
                app: app.id,
                image_digest: manifest_digest,
                processes: current.processes,
                config: current.config,
                description: format!("Rebase onto stack {}", short_hex(&stack.digest)),
                created_by: by,
            },
            ReleaseKind::Rebase,
        )
        .await
        .map_err(RebaseError::Store)?;
    tracing::info!(app = %app.name, release = %release.version, old = %old_stack, new = %stack.digest, "rebased");
    ctx.controller.notify(Event::ReleaseCreated(app.id));
    Ok(RebaseOutcome {
        old_stack,
        new_stack: stack.digest,
        release: Some(release.version),
    })
}

/// The first 12 hex digits of a `sha256:` digest.
pub fn short_hex(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}
