//! `/api/v1/agents`: the `sluice agent`s of the `hosts` clusters register, send
//! heartbeats (their processes) and take their orders in the answer
//! (`crate::cluster::hosts`). Admin tokens only: an agent runs whatever the master
//! tells it to.

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::guard::secured;
use super::AppState;
use crate::auth::Role;
use crate::cluster::hosts::{
    AgentHeartbeat, AgentOrders, AgentRegistered, AgentView, RegisterAgent,
};
use crate::cluster::AgentRegistry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Agent, routes!(register_agent)))
        .routes(secured(Role::Admin, routes!(list_agents)))
        .routes(secured(Role::Agent, routes!(agent_heartbeat)))
}

fn registry(m: &AppState) -> Result<Arc<AgentRegistry>, ApiError> {
    m.core.agents.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_hosts_cluster",
            "this master has no hosts cluster (start it with --hosts-cluster NAME:KEY=VALUE)",
        )
    })
}

/// Register an agent: it offers `slots` worker threads on its host.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents",
    request_body = RegisterAgent,
    responses(
        (status = 201, description = "Registered", body = AgentRegistered),
        (status = 400, description = "Invalid registration", body = ErrorBody),
        (status = 409, description = "This master has no hosts cluster", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body", body = ErrorBody),
    ))]
async fn register_agent(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<RegisterAgent>,
) -> Result<(StatusCode, Json<AgentRegistered>), ApiError> {
    let registered = registry(&m)?
        .register(req)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_agent", e))?;
    m.core.wake();
    Ok((StatusCode::CREATED, Json(registered)))
}

/// The agents, with their slots and use.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses(
        (status = 200, description = "Agents by id", body = Vec<AgentView>),
        (status = 409, description = "This master has no hosts cluster", body = ErrorBody),
    ))]
async fn list_agents(State(m): State<AppState>) -> Result<Json<Vec<AgentView>>, ApiError> {
    Ok(Json(registry(&m)?.agents()))
}

/// An agent's heartbeat: its processes now; the answer holds its orders.
#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    request_body = AgentHeartbeat,
    responses(
        (status = 200, description = "What the agent is to do now", body = AgentOrders),
        (status = 400, description = "Invalid heartbeat", body = ErrorBody),
        (status = 404, description = "No such agent (register again)", body = ErrorBody),
        (status = 409, description = "This master has no hosts cluster", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body", body = ErrorBody),
    ))]
async fn agent_heartbeat(
    State(m): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(hb): ApiJson<AgentHeartbeat>,
) -> Result<Json<AgentOrders>, ApiError> {
    let orders = registry(&m)?
        .heartbeat(&id, hb)
        .ok_or_else(|| ApiError::not_found(format!("agent '{id}' is not registered")))?;
    Ok(Json(orders))
}
