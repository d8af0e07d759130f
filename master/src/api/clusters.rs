//! `/api/v1/clusters`: where instances run, with capacity and use.

use super::error::{ApiError, ErrorBody};
use super::guard::secured;
use super::views::ClusterView;
use super::AppState;
use crate::auth::Role;
use crate::model::Capacity;
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(secured(Role::Admin, routes!(list_clusters)))
}

/// Clusters with their capacity and what live instances use of it.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters",
    responses(
        (status = 200, description = "Clusters by name", body = Vec<ClusterView>),
        (status = 500, description = "A cluster driver failed", body = ErrorBody),
    ))]
async fn list_clusters(State(m): State<AppState>) -> Result<Json<Vec<ClusterView>>, ApiError> {
    let instances = m.core.instances()?;
    let views = m
        .core
        .clusters
        .values()
        .map(|c| {
            let live: Vec<_> = instances
                .iter()
                .filter(|i| i.cluster == c.name() && i.state.is_live())
                .collect();
            ClusterView {
                name: c.name().to_string(),
                kind: c.kind().to_string(),
                capacity: c.capacity(),
                threads_per_process: c.threads_per_process(),
                used: Capacity {
                    workers: live.iter().map(|i| u64::from(i.parallelism)).sum(),
                    memory_mb: live.iter().map(|i| i.memory_mb).sum(),
                    gpus: live.iter().map(|i| u64::from(i.gpus)).sum(),
                },
                instances: live.len() as u64,
            }
        })
        .collect();
    Ok(Json(views))
}
