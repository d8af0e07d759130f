//! `/api/v1/tables`: the persisted catalog; tables created here are usable by any job.

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::guard::secured;
use super::views::{CreateTableRequest, TableView};
use super::AppState;
use crate::auth::Role;
use crate::service::ServiceError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Viewer, routes!(list_tables)))
        .routes(secured(Role::Editor, routes!(create_tables)))
        .routes(secured(Role::Viewer, routes!(get_table)))
        .routes(secured(Role::Editor, routes!(drop_table)))
}

/// Create tables from `CREATE TABLE` statements.
#[utoipa::path(post, path = "/api/v1/tables", tag = "tables",
    request_body = CreateTableRequest,
    responses(
        (status = 201, description = "The tables created", body = Vec<TableView>),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 409, description = "A table of that name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Malformed body, or DDL that does not compile", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn create_tables(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<CreateTableRequest>,
) -> Result<(StatusCode, Json<Vec<TableView>>), ApiError> {
    let tables = m.core.create_tables(&req.ddl)?;
    Ok((
        StatusCode::CREATED,
        Json(tables.iter().map(TableView::new).collect()),
    ))
}

/// Every table in the catalog, by name.
#[utoipa::path(get, path = "/api/v1/tables", tag = "tables",
    responses(
        (status = 200, description = "Tables", body = Vec<TableView>),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn list_tables(State(m): State<AppState>) -> Result<Json<Vec<TableView>>, ApiError> {
    let tables = m.core.store.list_tables().map_err(ServiceError::from)?;
    Ok(Json(tables.iter().map(TableView::new).collect()))
}

/// One table.
#[utoipa::path(get, path = "/api/v1/tables/{name}", tag = "tables",
    params(("name" = String, Path, description = "The table's name (case-insensitive)")),
    responses(
        (status = 200, description = "The table", body = TableView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such table", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn get_table(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TableView>, ApiError> {
    match m.core.store.get_table(&name).map_err(ServiceError::from)? {
        Some(t) => Ok(Json(TableView::new(&t))),
        None => Err(ApiError::not_found(format!(
            "table '{name}' does not exist"
        ))),
    }
}

/// Drop a table. Running jobs keep the plan they were compiled with; a later change of
/// a job that reads it fails to compile.
#[utoipa::path(delete, path = "/api/v1/tables/{name}", tag = "tables",
    params(("name" = String, Path, description = "The table's name (case-insensitive)")),
    responses(
        (status = 204, description = "Dropped"),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such table", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn drop_table(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if m.core
        .store
        .delete_table(&name)
        .map_err(ServiceError::from)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "table '{name}' does not exist"
        )))
    }
}
