//! `POST /v1/apps/{name}/rebase`: the app's current release moved onto the current stack (see
//! `controller::rebase`).

use api_contract::RebaseInfo;
use axum::extract::{Path, State};

use super::{app_for, Permission};
use crate::{ApiError, ApiState, Caller};

/// Makes a new release on the current stack, or says the app already is on it (`release` is `null`).
pub async fn rebase(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<axum::Json<RebaseInfo>, ApiError> {
    let app = app_for(&state, &caller, &name, Permission::Deploy).await?;
    let ctx = controller::RebaseContext {
        images: state.images.clone(),
        stacks_dir: state.stacks_dir.clone(),
        controller: state.controller.clone(),
    };
    let outcome = controller::rebase(&state.store, &ctx, &app, caller.0.id).await?;
    Ok(axum::Json(RebaseInfo {
        old_stack: outcome.old_stack,
        new_stack: outcome.new_stack,
        release: outcome.release,
    }))
}
