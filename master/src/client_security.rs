//! `sluice token …` and `sluice audit`: command-line clients of `/api/v1/tokens` and
//! `/api/v1/audit` (admin tokens only).

use crate::client::{as_list, fail, print_json, s, seg, table, Api, ClientError, ClientOpts};
use clap::{Args, Subcommand};
use serde_json::json;

/// `sluice token …`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    opts: ClientOpts,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create an API token; its value is printed once (the master keeps only a hash).
    Create {
        /// The token's name (the audit log names its caller by it).
        name: String,
        /// viewer (read), editor (jobs, tables, workflows), admin (everything) or agent
        /// (a `sluice agent`: registers and heartbeats, nothing else).
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 90d, 12h, 30m (default: until revoked).
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens with their role, expiry and last use (never their values).
    List,
    /// Revoke the active token with this name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `sluice token …`.
pub fn token_cmd(args: TokenArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.opts)?;
    let json_out = args.opts.json;
    match args.command {
        TokenCommand::Create {
            name,
            role,
            expires_in,
        } => {
            if crate::auth::Role::parse(&role).is_none() {
                return Err(fail(
                    2,
                    format!("error: invalid role '{role}': use agent, viewer, editor or admin"),
                ));
            }
            let mut body = json!({"name": name, "role": role});
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            let v = api.json("POST", "/api/v1/tokens", Some(body))?;
            if json_out {
                print_json(&v);
            } else {
                eprintln!(
                    "created token {} (role {}); it is shown only now:",
                    s(&v["name"]),
                    s(&v["role"])
                );
                println!("{}", s(&v["token"]));
            }
        }
        TokenCommand::List => {
            let v = api.json("GET", "/api/v1/tokens", None)?;
            if json_out {
                print_json(&v);
            } else {
                let rows = as_list(&v)
                    .iter()
                    .map(|t| {
                        vec![
                            s(&t["name"]),
                            s(&t["role"]),
                            if t["active"] == true {
                                "active".into()
                            } else if t["revoked_at"].is_string() {
                                "revoked".into()
                            } else {
                                "expired".into()
                            },
                            s(&t["expires_at"]),
                            s(&t["last_used_at"]),
                        ]
                    })
                    .collect();
                table(&["NAME", "ROLE", "STATE", "EXPIRES", "LAST USED"], rows);
            }
        }
        TokenCommand::Revoke { name } => {
            let v = api.json("DELETE", &format!("/api/v1/tokens/{}", seg(&name)), None)?;
            if json_out {
                print_json(&v);
            } else {
                println!("revoked token {name}");
            }
        }
    }
    Ok(())
}

/// `sluice audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only this caller's entries (a token name; `-`: unauthenticated requests).
    #[arg(long)]
    who: Option<String>,
    /// Only entries about this target (e.g. a job's name).
    #[arg(long)]
    target: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Only entries with this outcome: ok, denied or failed.
    #[arg(long)]
    outcome: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u64,
    #[command(flatten)]
    opts: ClientOpts,
}

/// `sluice audit`: the audit log, newest first.
pub fn audit_cmd(args: AuditArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.opts)?;
    let mut query = vec![format!("limit={}", args.limit)];
    for (k, v) in [
        ("who", &args.who),
        ("target", &args.target),
        ("since", &args.since),
        ("until", &args.until),
        ("outcome", &args.outcome),
    ] {
        if let Some(v) = v {
            query.push(format!("{k}={}", seg(v)));
        }
    }
    let v = api.json("GET", &format!("/api/v1/audit?{}", query.join("&")), None)?;
    if args.opts.json {
        print_json(&v);
        return Ok(());
    }
    let rows = as_list(&v)
        .iter()
        .map(|e| {
            vec![
                s(&e["at"]),
                e["who"].as_str().unwrap_or("-").to_string(),
                match e["suppressed"].as_u64() {
                    Some(n) => format!("({n} anonymous requests, not logged one by one)"),
                    None => format!("{} {}", s(&e["method"]), s(&e["route"])),
                },
                s(&e["target"]),
                s(&e["status"]),
                s(&e["outcome"]),
                s(&e["request_id"]),
            ]
        })
        .collect();
    table(
        &[
            "AT", "WHO", "ROUTE", "TARGET", "STATUS", "OUTCOME", "REQUEST",
        ],
        rows,
    );
    Ok(())
}
