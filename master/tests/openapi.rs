//! `openapi/openapi.json` is the document the handlers generate: this test fails when
//! it is stale. Regenerate with `SLUICE_UPDATE_OPENAPI=1 cargo test -p sluice-master --test openapi`.

use std::path::PathBuf;

#[test]
fn checked_in_openapi_document_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let generated = sluice_master::api::openapi_json();
    if std::env::var_os("SLUICE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi/openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/openapi.json is stale: run `SLUICE_UPDATE_OPENAPI=1 cargo test -p sluice-master --test openapi` and commit it"
    );
}

#[test]
fn every_operation_documents_its_errors_with_the_error_body() {
    let api: serde_json::Value =
        serde_json::from_str(&sluice_master::api::openapi_json()).expect("valid JSON");
    let paths = api["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1/jobs"));
    assert!(paths.contains_key("/api/v1/jobs/validate"));
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            for (code, r) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {code} must use ErrorBody"
                    );
                }
            }
        }
    }
}

/// A commit's first source range starts at `null` (the source's start): the document
/// must allow it (schemathesis found the response violating the old schema).
#[test]
fn a_source_range_may_start_at_null() {
    let doc: serde_json::Value =
        serde_json::from_str(&sluice_master::api::openapi_json()).expect("openapi json");
    let items = &doc["components"]["schemas"]["SourceRangeView"]["properties"]["from"]["items"];
    let types = items["type"].as_array().expect("a list of types");
    assert!(types.iter().any(|t| t == "null"), "{items}");
}
