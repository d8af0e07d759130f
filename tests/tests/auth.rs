//! Authentication, authorization and audit of the real `sluice serve` over HTTP.
//!
//! The matrix is generated from the served `/api-docs/openapi.json`, so a new route is
//! covered without touching this file: every operation × {no token, malformed, revoked,
//! expired, agent, viewer, editor, admin} must answer exactly what its declared role implies
//! (401 / 403, never an unexpected 2xx), and every mutation attempt and every denial
//! must be in the audit log exactly once, with its status. JWTs are signed here with
//! RSA and EC keys that `openssl` generates at test time, served to the master as a
//! JWKS file.

use serde_json::{json, Value};
use sluice_tests::{stderr, stdout, MasterProcess};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Whether a token of role `have` may call a route that needs `need`: viewer < editor <
/// admin; the agent routes take an agent's token or an admin's, and an agent's token
/// nothing else.
fn allows(have: &str, need: &str) -> bool {
    let rank = |role: &str| match role {
        "viewer" => 1,
        "editor" => 2,
        "admin" => 3,
        other => panic!("unknown role {other}"),
    };
    match (have, need) {
        ("agent", need) => need == "agent",
        (have, "agent") => have == "admin",
        (have, need) => rank(have) >= rank(need),
    }
}

/// Creates a token with the admin token; returns its value.
fn create_token(m: &MasterProcess, name: &str, role: &str, expires_in: Option<&str>) -> String {
    let mut body = json!({"name": name, "role": role});
    if let Some(e) = expires_in {
        body["expires_in"] = json!(e);
    }
    let (s, v) = m.request("POST", "/api/v1/tokens", Some(body));
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token value").to_string()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    out.stdout
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK (kid `kid`) of the RSA key in the PEM file `pem`.
fn rsa_jwk(pem: &Path, kid: &str) -> Value {
    let modulus = String::from_utf8(openssl(&[
        "rsa",
        "-in",
        pem.to_str().unwrap(),
        "-noout",
        "-modulus",
    ]))
    .unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&n), "e": "AQAB"})
}

/// A test identity provider: an RSA and an EC (P-256) key in a JWKS file, and a second
/// RSA key the JWKS does not hold.
struct Idp {
    rsa: jsonwebtoken::EncodingKey,
    ec: jsonwebtoken::EncodingKey,
    stranger: jsonwebtoken::EncodingKey,
    jwks: PathBuf,
}

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "sluice";

impl Idp {
    fn new(dir: &Path) -> Idp {
        let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
        for (name, alg) in [
            ("rsa.pem", "RSA"),
            ("stranger.pem", "RSA"),
            ("ec.pem", "EC"),
        ] {
            let mut args = vec!["genpkey", "-algorithm", alg, "-out"];
            let path = p(name);
            args.push(&path);
            if alg == "RSA" {
                args.extend(["-pkeyopt", "rsa_keygen_bits:2048"]);
            } else {
                args.extend(["-pkeyopt", "ec_paramgen_curve:P-256"]);
            }
            openssl(&args);
        }
        let der = openssl(&["pkey", "-in", &p("ec.pem"), "-pubout", "-outform", "DER"]);
        let xy = &der[der.len() - 64..];
        let jwks = json!({"keys": [
            rsa_jwk(&dir.join("rsa.pem"), "rsa"),
            {"kty": "EC", "kid": "ec", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64(&xy[..32]), "y": b64(&xy[32..])},
        ]});
        let path = dir.join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
        Idp {
            rsa: jsonwebtoken::EncodingKey::from_rsa_pem(&read("rsa.pem")).unwrap(),
            ec: jsonwebtoken::EncodingKey::from_ec_pem(&read("ec.pem")).unwrap(),
            stranger: jsonwebtoken::EncodingKey::from_rsa_pem(&read("stranger.pem")).unwrap(),
            jwks: path,
        }
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--jwks".into(),
            self.jwks.to_str().unwrap().into(),
            "--jwt-issuer".into(),
            ISSUER.into(),
            "--jwt-audience".into(),
            AUDIENCE.into(),
        ]
    }

    /// A token for `sub` with `role`; `tweak` edits the claims before signing.
    fn token(&self, ec: bool, sub: &str, role: &str, tweak: impl FnOnce(&mut Value)) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": role,
                                "iat": now, "nbf": now, "exp": now + 600});
        tweak(&mut claims);
        let (alg, kid, key) = if ec {
            (jsonwebtoken::Algorithm::ES256, "ec", &self.ec)
        } else {
            (jsonwebtoken::Algorithm::RS256, "rsa", &self.rsa)
        };
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    /// A viewer token for `sub` signed by the key the JWKS does not hold (or holds
    /// after a rotation), under `kid`.
    fn stranger_token(&self, kid: &str, sub: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": "viewer",
                            "nbf": now, "exp": now + 600});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &self.stranger).unwrap()
    }

    /// Signed by a key the JWKS does not hold, under the RSA key's kid.
    fn forged(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "role": "admin", "exp": now + 600});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("rsa".into());
        jsonwebtoken::encode(&header, &claims, &self.stranger).unwrap()
    }
}

/// The declared role of each operation, from the served document: `None` = public.
fn operations(doc: &Value) -> Vec<(String, String, Option<String>)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let security = op["security"].as_array().unwrap_or_else(|| {
                panic!("{method} {path} declares no security (every route must)")
            });
            let role = security
                .first()
                .and_then(|r| r["bearer"].as_array())
                .and_then(|roles| roles.first())
                .and_then(|r| r.as_str())
                .map(str::to_string);
            ops.push((method.to_uppercase(), path.clone(), role));
        }
    }
    ops
}

#[test]
fn every_route_answers_each_credential_as_its_role_says_and_is_audited_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let idp = Idp::new(dir.path());
    let flags = idp.flags();
    let m = MasterProcess::start(&data, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let admin = m.admin_token();
    let viewer = create_token(&m, "matrix-viewer", "viewer", None);
    let editor = create_token(&m, "matrix-editor", "editor", None);
    let agent = create_token(&m, "matrix-agent", "agent", None);
    let revoked = create_token(&m, "matrix-revoked", "admin", None);
    let (s, v) = m.request("DELETE", "/api/v1/tokens/matrix-revoked", None);
    assert_eq!(s, 200, "{v}");
    let expired = create_token(&m, "matrix-expired", "admin", Some("1s"));
    // Wait (with a deadline) until the short-lived token has expired.
    m.wait_for(10, "the 1 s token to expire", || {
        let (s, v) = m.request_as(Some(&expired), "GET", "/api/v1/jobs", None);
        (s == 401 && v["message"].as_str().unwrap_or("").contains("expired")).then_some(())
    });

    let (s, _, doc) = m.request_full(None, "GET", "/api-docs/openapi.json", None);
    assert_eq!(s, 200, "the OpenAPI document stays open");
    let ops = operations(&doc);
    assert!(ops.len() > 30, "{ops:?}");
    // The agents' routes take an agent's token; listing the agents stays an admin's.
    for (method, route, role) in [
        ("POST", "/api/v1/agents", "agent"),
        ("POST", "/api/v1/agents/{id}/heartbeat", "agent"),
        ("GET", "/api/v1/agents", "admin"),
    ] {
        assert!(
            ops.iter()
                .any(|(m, r, d)| m == method && r == route && d.as_deref() == Some(role)),
            "{method} {route} should need {role}: {ops:?}"
        );
    }

    let bearer = |t: &str| Some(format!("Bearer {t}"));
    // (label, Authorization header, role it carries when valid)
    let creds: Vec<(&str, Option<String>, Option<&str>)> = vec![
        ("none", None, None),
        ("malformed", Some("Bearer not-a-token".into()), None),
        ("not-bearer", Some(format!("Basic {admin}")), None),
        ("revoked", bearer(&revoked), None),
        ("expired", bearer(&expired), None),
        ("agent", bearer(&agent), Some("agent")),
        ("viewer", bearer(&viewer), Some("viewer")),
        ("editor", bearer(&editor), Some("editor")),
        ("admin", bearer(&admin), Some("admin")),
        (
            "jwt-expired",
            bearer(&idp.token(false, "alice", "admin", |c| {
                c["exp"] = json!(c["exp"].as_i64().unwrap() - 4000)
            })),
            None,
        ),
        (
            "jwt-not-yet-valid",
            bearer(&idp.token(true, "alice", "admin", |c| {
                c["nbf"] = json!(c["nbf"].as_i64().unwrap() + 3600)
            })),
            None,
        ),
        ("jwt-bad-signature", bearer(&idp.forged()), None),
        (
            "jwt-wrong-issuer",
            bearer(&idp.token(false, "alice", "admin", |c| {
                c["iss"] = json!("https://evil.test")
            })),
            None,
        ),
        (
            "jwt-wrong-audience",
            bearer(&idp.token(true, "alice", "admin", |c| c["aud"] = json!("other"))),
            None,
        ),
        (
            "jwt-no-role",
            bearer(&idp.token(false, "alice", "root", |_| {})),
            None,
        ),
        (
            "jwt-viewer-rs256",
            bearer(&idp.token(false, "alice", "viewer", |_| {})),
            Some("viewer"),
        ),
        (
            "jwt-editor-es256",
            bearer(&idp.token(true, "bob", "editor", |_| {})),
            Some("editor"),
        ),
    ];
    let mut covered = 0;
    // request id → (status, method, route, who)
    let mut audited_expected: BTreeMap<String, (u16, String, String)> = BTreeMap::new();
    let mut not_audited: Vec<String> = Vec::new();
    let mut bodies = String::new();
    for (method, route, role) in &ops {
        let path = route
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "matrix-missing"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        for (label, auth, cred_role) in &creds {
            let (status, headers, v) = m.request_full(auth.as_deref(), method, &path, body.clone());
            bodies.push_str(&v.to_string());
            let expected = match (role, cred_role) {
                (None, _) => None,
                (Some(_), None) => Some(401),
                (Some(need), Some(have)) if !allows(have, need) => Some(403),
                _ => None,
            };
            match expected {
                Some(code) => {
                    assert_eq!(status, code, "{label} {method} {path}: {v}");
                    let c = if code == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    };
                    assert_eq!(v["code"], c, "{label} {method} {path}: {v}");
                    if code == 401 {
                        assert_eq!(header(&headers, "www-authenticate"), Some("Bearer"));
                    }
                }
                None => assert!(
                    status != 401 && status != 403 && status < 500,
                    "{label} {method} {path}: unexpected {status} {v}"
                ),
            }
            let rid = header(&headers, "x-request-id")
                .unwrap_or_else(|| panic!("{label} {method} {path}: no x-request-id"))
                .to_string();
            if method != "GET" || expected.is_some() {
                audited_expected.insert(rid, (status, method.clone(), route.clone()));
            } else {
                not_audited.push(rid);
            }
        }
        covered += 1;
    }
    eprintln!(
        "auth matrix: {covered}/{} operations covered ({}%), {} credentials each",
        ops.len(),
        covered * 100 / ops.len(),
        creds.len()
    );
    assert_eq!(covered, ops.len());

    // The audit log holds each mutation attempt and each denial exactly once.
    let log = m.get("/api/v1/audit?limit=10000");
    let mut seen: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in log.as_array().unwrap() {
        seen.entry(e["request_id"].as_str().unwrap().to_string())
            .or_default()
            .push(e);
    }
    for (rid, (status, method, route)) in &audited_expected {
        let entries = seen.get(rid).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            entries.len(),
            1,
            "{method} {route} ({rid}) audited {} times",
            entries.len()
        );
        let e = entries[0];
        assert_eq!(e["status"], *status, "{e}");
        assert_eq!(e["method"], method.as_str(), "{e}");
        assert_eq!(e["route"], route.as_str(), "{e}");
        let outcome = match status {
            401 | 403 | 429 => "denied",
            s if *s >= 400 => "failed",
            _ => "ok",
        };
        assert_eq!(e["outcome"], outcome, "{e}");
    }
    for rid in &not_audited {
        assert!(
            !seen.contains_key(rid),
            "an allowed read was audited: {rid}"
        );
    }
    // The matrix's denials name the caller when the token was valid.
    for who in ["matrix-viewer", "alice", "bob"] {
        let denials = m.get(&format!(
            "/api/v1/audit?who={who}&outcome=denied&limit=10000"
        ));
        assert!(
            !denials.as_array().unwrap().is_empty(),
            "no denial of {who}"
        );
    }

    // Secrets: no token value in any response (but its creation's), the audit log, the
    // metrics, the master's log or the store's files.
    let (_, metrics) = m.request("GET", "/metrics", None);
    let audit_text = log.to_string();
    let master_log = m.log();
    let store_files = walk(&data.join("store"));
    assert!(!store_files.is_empty());
    let mut secrets: Vec<(String, String)> = [
        ("admin", &admin),
        ("viewer", &viewer),
        ("editor", &editor),
        ("revoked", &revoked),
        ("expired", &expired),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.rsplit('_').next().unwrap().to_string()))
    .collect();
    // A JWT's signature (its last part).
    for (label, auth, _) in &creds {
        if let (true, Some(a)) = (label.starts_with("jwt-"), auth) {
            secrets.push((label.to_string(), a.rsplit('.').next().unwrap().to_string()));
        }
    }
    for (name, secret) in &secrets {
        let secret = secret.as_str();
        assert!(
            !bodies.contains(secret),
            "a response holds the {name} token"
        );
        assert!(
            !audit_text.contains(secret),
            "the audit log holds the {name} token"
        );
        assert!(
            !metrics.to_string().contains(secret),
            "metrics hold the {name} token"
        );
        assert!(
            !master_log.contains(secret),
            "the master log holds the {name} token"
        );
        for f in &store_files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{f:?} holds the {name} token"
            );
        }
    }
}

#[test]
fn tokens_are_created_listed_used_and_revoked_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let m = MasterProcess::start(&data, &[]);
    let log = m.log();
    assert!(log.contains("admin.token"), "{log}");
    assert!(!log.contains(&m.admin_token()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The CLI finds the admin token of a local master in its data directory.
    let out = m.cli(&[
        "token",
        "create",
        "ci",
        "--role",
        "editor",
        "--expires-in",
        "30d",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ci = stdout(&out).trim().to_string();
    assert!(ci.starts_with("sluice_"), "{ci}");

    let as_ci = |args: &[&str]| {
        std::process::Command::new(sluice_tests::sluice_bin())
            .args(args)
            .args(["--server", &m.base])
            .current_dir(dir.path())
            .env_remove("SLUICE_DATA_DIR")
            .env("SLUICE_TOKEN", &ci)
            .output()
            .unwrap()
    };
    let sql = dir.path().join("job.sql");
    std::fs::write(
        &sql,
        "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
         CREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO b SELECT a FROM g;\n",
    )
    .unwrap();
    let out = as_ci(&["job", "submit", "by-ci", sql.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The job's events name who caused them.
    let events = m.get("/api/v1/jobs/by-ci/events");
    let created = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "created")
        .expect("a created event");
    assert_eq!(created["by"], "ci", "{events}");
    // An editor may not manage tokens: 403, exit 2.
    let out = as_ci(&["token", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("needs the role admin"),
        "{}",
        stderr(&out)
    );

    let out = m.cli(&["token", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains("ci") && listed.contains("editor") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains(ci.rsplit('_').next().unwrap()), "{listed}");

    let out = m.cli(&["token", "revoke", "ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_ci(&["job", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));

    // Without any token (no flag, no profile, no local data directory): 401, exit 2,
    // and a hint where a token comes from.
    let out = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["job", "list", "--server", &m.base])
        .current_dir(dir.path())
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_DATA_DIR")
        .env("SLUICE_CONFIG", dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("admin.token"), "{}", stderr(&out));

    // The audit log: the submit and the revoke, by whom, with their outcome.
    let out = m.cli(&["audit", "--json", "--target", "by-ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entries: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let e = &entries.as_array().unwrap()[0];
    assert_eq!(
        (e["who"].as_str(), e["status"].as_u64()),
        (Some("ci"), Some(201)),
        "{entries}"
    );
    let out = m.cli(&["audit", "--who", "ci", "--outcome", "denied"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("/api/v1/tokens"), "{}", stdout(&out));
    let out = m.cli(&["audit", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // A restarted master keeps its tokens and does not mint a new admin token.
    let before = m.admin_token();
    drop(m);
    let m = MasterProcess::start(&data, &[]);
    assert_eq!(m.admin_token(), before);
    assert_eq!(m.get("/api/v1/tokens").as_array().unwrap().len(), 2);
}

#[test]
fn metrics_need_a_token_unless_public_or_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("a"), &["--metrics-listen", "127.0.0.1:0"]);
    let (s, _) = m.request_as(None, "GET", "/metrics", None);
    assert_eq!(s, 401);
    let (s, _) = m.request_as(None, "GET", "/healthz", None);
    assert_eq!(s, 200);
    let (s, _) = m.request("GET", "/metrics", None);
    assert_eq!(s, 200);
    let log = m.log();
    let url = log
        .split("metrics (unauthenticated) on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics listener in the log: {log}"))
        .to_string();
    let r = ureq::get(&url).call().expect("unauthenticated metrics");
    assert!(r.into_string().unwrap().contains("sluice_"));

    let p = MasterProcess::start(&dir.path().join("b"), &["--metrics-public"]);
    let (s, _) = p.request_as(None, "GET", "/metrics", None);
    assert_eq!(s, 200);
    let (s, _) = p.request_as(None, "GET", "/api/v1/jobs", None);
    assert_eq!(s, 401);
}

#[test]
fn a_token_beyond_its_rate_gets_429_with_retry_after_and_an_owner_beyond_the_job_cap_429() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(
        &dir.path().join("a"),
        &["--rate-limit-per-s", "1", "--rate-limit-burst", "3"],
    );
    let other = create_token(&m, "other", "viewer", None);
    let auth = format!("Bearer {}", m.admin_token());
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let (s, h, v) = m.request_full(Some(&auth), "GET", "/api/v1/jobs", None);
        if s == 429 {
            assert_eq!(v["code"], "too_many_requests", "{v}");
            retry_after = header(&h, "retry-after").map(str::to_string);
        }
        statuses.push(s);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Another token has its own budget.
    let (s, _) = m.request_as(Some(&other), "GET", "/api/v1/jobs", None);
    assert_eq!(s, 200);

    let p = MasterProcess::start(&dir.path().join("b"), &["--max-jobs-per-owner", "1"]);
    let ed = create_token(&p, "ed", "editor", None);
    let job = |name: &str| {
        json!({"name": name, "sql": "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
            CREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;\n"})
    };
    let (s, v) = p.request_as(Some(&ed), "POST", "/api/v1/jobs", Some(job("one")));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["owner"], "ed");
    let (s, v) = p.request_as(Some(&ed), "POST", "/api/v1/jobs", Some(job("two")));
    assert_eq!(
        (s, v["code"].as_str()),
        (429, Some("quota_exceeded")),
        "{v}"
    );
    let (s, v) = p.request("POST", "/api/v1/jobs", Some(job("three")));
    assert_eq!(s, 201, "another owner is not capped: {v}");
}

/// The data directory holds the seal key, the admin token, the store and the
/// instances' requests: `sluice serve` makes it private (0700) even when it existed
/// with a looser mode, and its key files are 0600.
#[test]
fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = MasterProcess::start(&data, &[]);
    m.get("/healthz");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    assert_eq!(mode(&data.join("admin.token")), 0o600);
    assert_eq!(mode(&data.join("secret.key")), 0o600);
}

/// A flood of anonymous requests neither fills the audit log (pushing real entries
/// out) nor makes the master sync its disk per request: beyond the anonymous budget
/// the refusals are counted in summary entries, and the count is exact.
#[test]
fn an_anonymous_flood_is_audited_as_a_bounded_number_of_entries_and_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &[
            "--audit-anonymous-burst",
            "20",
            "--audit-anonymous-per-min",
            "60",
        ],
    );
    let started = std::time::Instant::now();
    for i in 0..500 {
        let auth = (i % 2 == 0).then_some("Bearer not-a-token");
        let (s, _, v) = m.request_full(auth, "DELETE", "/api/v1/jobs/x", None);
        assert_eq!(s, 401, "{v}");
    }
    let refill = started.elapsed().as_secs() + 2;
    let log = m.get("/api/v1/audit?who=-&limit=10000");
    let entries = log.as_array().unwrap();
    let single = entries.iter().filter(|e| e["suppressed"].is_null()).count() as u64;
    let counted: u64 = entries
        .iter()
        .filter_map(|e| e["suppressed"].as_u64())
        .sum();
    assert!(
        single >= 20 && single <= 20 + refill,
        "{single} single entries"
    );
    assert_eq!(single + counted, 500, "{log}");
    let summary = entries.iter().find(|e| !e["suppressed"].is_null()).unwrap();
    assert_eq!(summary["status"], 401, "{summary}");
    assert_eq!(summary["outcome"], "denied", "{summary}");
    // An authenticated mutation is still audited one by one.
    let (s, v) = m.request("DELETE", "/api/v1/jobs/x", None);
    assert_eq!(s, 404, "{v}");
    let mine = m.get("/api/v1/audit?who=admin&limit=10");
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|e| e["route"] == "/api/v1/jobs/{name}" && e["status"] == 404),
        "{mine}"
    );
    // The CLI shows the summary.
    let o = m.cli(&["audit", "--who", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("anonymous requests, not logged one by one"),
        "{}",
        stdout(&o)
    );
}

/// A tiny identity-provider endpoint: serves the current JWKS text at any path and
/// counts the requests.
struct JwksServer {
    addr: std::net::SocketAddr,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    fn start(body: String) -> JwksServer {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body = std::sync::Arc::new(std::sync::Mutex::new(body));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (b, h) = (body.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                // The request head, up to its blank line.
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let text = b.lock().unwrap().clone();
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        JwksServer { addr, body, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `--jwks` as a URL: the keys are fetched at start; after the provider rotates its
/// key, a token under the new `kid` is accepted at once (an unknown kid makes the
/// master fetch again, at most every 30 s) and the retired key stops working; the
/// periodic refresh (`--jwks-refresh-s`) drops a retired key no token asked about.
#[test]
fn a_jwks_url_is_fetched_and_follows_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    let server = JwksServer::start(std::fs::read_to_string(&idp.jwks).unwrap());
    let url = format!("http://{}/.well-known/jwks.json", server.addr);
    let start = |data: &str, refresh_s: &str| {
        MasterProcess::start(
            &dir.path().join(data),
            &[
                "--jwks",
                &url,
                "--jwt-issuer",
                ISSUER,
                "--jwt-audience",
                AUDIENCE,
                "--jwks-refresh-s",
                refresh_s,
            ],
        )
    };
    let m = start("data", "3600");
    assert_eq!(server.hits(), 1, "fetched once at start");
    let bearer = |t: &str| format!("Bearer {t}");
    let status = |m: &MasterProcess, t: &str| {
        m.request_full(Some(&bearer(t)), "GET", "/api/v1/jobs", None)
            .0
    };
    let alice = idp.token(false, "alice", "viewer", |_| {});
    let carol = idp.stranger_token("rsa2", "carol");
    assert_eq!(status(&m, &alice), 200);

    // The provider rotates: the stranger key under kid `rsa2` replaces the RSA key.
    let rotated = json!({"keys": [rsa_jwk(&dir.path().join("stranger.pem"), "rsa2")]});
    *server.body.lock().unwrap() = rotated.to_string();
    assert_eq!(status(&m, &carol), 200, "the new kid is fetched at once");
    assert_eq!(server.hits(), 2);
    assert_eq!(status(&m, &alice), 401, "the retired key is gone");
    // Unknown kids do not make the master fetch again within 30 s.
    for _ in 0..20 {
        assert_eq!(status(&m, &idp.stranger_token("nope", "mallory")), 401);
    }
    assert_eq!(server.hits(), 2, "unknown kids fetched the JWKS again");
    drop(m);

    // A master refreshing every second drops the `rsa2` key once the provider does,
    // although no token names an unknown kid.
    let m = start("data2", "1");
    assert_eq!(status(&m, &carol), 200);
    *server.body.lock().unwrap() = std::fs::read_to_string(&idp.jwks).unwrap();
    m.wait_for(15, "the periodic refresh to drop the retired key", || {
        (status(&m, &carol) == 401).then_some(())
    });
    assert_eq!(status(&m, &alice), 200);
}
