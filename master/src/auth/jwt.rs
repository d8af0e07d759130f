//! JWT bearer tokens from an external identity provider (OIDC style), verified with the
//! `jsonwebtoken` crate against a JWKS file: RS256 or ES256 only, the key chosen by the
//! token's `kid`, issuer and audience checked, `exp` required and `nbf` honoured with a
//! small leeway. The caller is the `sub` claim; the role comes from a configurable claim.
//!
//! The JWKS is a file, or a URL (`https://`, or `http://` on loopback) fetched at start,
//! refreshed in the background every `--jwks-refresh-s`, and fetched again at once when
//! a token names a `kid` it lacks (a key rotation), at most every 30 s.

use super::{AuthError, Principal, Role, SecurityError};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A key of the JWKS: its `kid`, the algorithm it verifies, the key.
type Key = (Option<String>, Algorithm, DecodingKey);

/// An unknown `kid` makes the master fetch a URL JWKS again at most this often.
pub const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(30);

/// Where the keys come from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Url(String),
}

impl Source {
    fn parse(jwks: &str) -> Result<Source, SecurityError> {
        let lower = jwks.to_ascii_lowercase();
        if !lower.starts_with("https://") && !lower.starts_with("http://") {
            return Ok(Source::File(PathBuf::from(jwks)));
        }
        let bad = |m: &str| SecurityError::Invalid(format!("JWKS URL {jwks}: {m}"));
        let url = url::Url::parse(jwks).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() == "http" {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if !loopback {
                return Err(bad(
                    "keys fetched over plain http could be replaced on the way: use https (http only for a loopback address)",
                ));
            }
        }
        Ok(Source::Url(url.to_string()))
    }

    fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Url(u) => u.clone(),
        }
    }

    /// Reads (or fetches) and parses the JWKS: its RSA and P-256 EC keys.
    fn load(&self) -> Result<Vec<Key>, SecurityError> {
        let bad = |m: String| SecurityError::Invalid(format!("JWKS {}: {m}", self.describe()));
        let text = match self {
            Source::File(path) => std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?,
            Source::Url(url) => ureq::get(url)
                .timeout(Duration::from_secs(10))
                .call()
                .map_err(|e| bad(e.to_string()))?
                .into_string()
                .map_err(|e| bad(e.to_string()))?,
        };
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err(bad("no RSA or EC key".into()));
        }
        Ok(keys)
    }
}

/// When a URL JWKS was last fetched.
#[derive(Debug)]
struct Fetches {
    /// The last fetch, periodic or not (successful or not).
    last: Instant,
    /// The last fetch an unknown `kid` caused.
    last_for_kid: Option<Instant>,
    /// A periodic fetch is under way.
    in_flight: bool,
}

/// How JWTs are verified.
pub struct JwtVerifier {
    source: Source,
    keys: Arc<RwLock<Vec<Key>>>,
    fetches: Arc<Mutex<Fetches>>,
    refresh_every: Duration,
    issuer: String,
    audience: String,
    role_claim: String,
    leeway_s: u64,
}

impl JwtVerifier {
    /// Loads the JWKS `jwks` names: a file, or an `https://` URL (`http://` only for a
    /// loopback address), fetched now and again `refresh_every` later (in the
    /// background, on the next token after that time), and at once when a token names
    /// a `kid` the keys lack (at most every [`UNKNOWN_KID_REFETCH`]). RSA and P-256 EC
    /// keys are used; others are skipped.
    pub fn open(
        jwks: &str,
        issuer: &str,
        audience: &str,
        role_claim: &str,
        leeway_s: u64,
        refresh_every: Duration,
    ) -> Result<JwtVerifier, SecurityError> {
        let source = Source::parse(jwks)?;
        let keys = source.load()?;
        if let Source::Url(url) = &source {
            tracing::info!("JWKS: {} keys from {url}", keys.len());
        }
        Ok(JwtVerifier {
            source,
            keys: Arc::new(RwLock::new(keys)),
            fetches: Arc::new(Mutex::new(Fetches {
                last: Instant::now(),
                last_for_kid: None,
                in_flight: false,
            })),
            refresh_every,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            role_claim: role_claim.to_string(),
            leeway_s,
        })
    }

    /// The key for a token's `kid` and `alg`.
    fn key_for(&self, kid: &Option<String>, alg: Algorithm) -> Option<(Algorithm, DecodingKey)> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .find(|(k, a, _)| *a == alg && (kid.is_none() || k == kid))
            .map(|(_, a, key)| (*a, key.clone()))
    }

    /// For a URL JWKS: starts a background fetch when the keys are older than
    /// `refresh_every`.
    fn refresh_when_due(&self) {
        let Source::Url(_) = &self.source else { return };
        {
            let mut f = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
            if f.in_flight || f.last.elapsed() < self.refresh_every {
                return;
            }
            f.in_flight = true;
            f.last = Instant::now();
        }
        let (source, keys, fetches) =
            (self.source.clone(), self.keys.clone(), self.fetches.clone());
        let spawned = std::thread::Builder::new()
            .name("jwks-refresh".into())
            .spawn(move || {
                store(&source, &keys);
                let mut f = fetches.lock().unwrap_or_else(|p| p.into_inner());
                f.in_flight = false;
                f.last = Instant::now();
            });
        if spawned.is_err() {
            let mut f = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
            f.in_flight = false;
        }
    }

    /// For a URL JWKS and a `kid` the keys lack: fetches now, unless an unknown kid
    /// already caused a fetch within [`UNKNOWN_KID_REFETCH`]. True when it fetched.
    fn refetch_for_unknown_kid(&self) -> bool {
        let Source::Url(_) = &self.source else {
            return false;
        };
        {
            let mut f = self.fetches.lock().unwrap_or_else(|p| p.into_inner());
            if f.last_for_kid
                .is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFETCH)
            {
                return false;
            }
            f.last_for_kid = Some(Instant::now());
            f.last = Instant::now();
        }
        store(&self.source, &self.keys);
        true
    }

    /// Verifies a JWT and returns its caller.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let jwt_err = |m: &str| AuthError::Jwt(m.to_string());
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(jwt_err("only RS256 and ES256 tokens are accepted"));
        }
        self.refresh_when_due();
        let found = self.key_for(&header.kid, header.alg).or_else(|| {
            self.refetch_for_unknown_kid()
                .then(|| self.key_for(&header.kid, header.alg))
                .flatten()
        });
        let (alg, key) =
            found.ok_or_else(|| jwt_err("no key of the JWKS matches the token's kid and alg"))?;
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = self.leeway_s;
        let data = decode::<serde_json::Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            jwt_err(match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::ImmatureSignature => "the token is not valid yet (nbf)",
                K::InvalidSignature => "the token's signature does not verify",
                K::InvalidIssuer => "the token's issuer is not the configured one",
                K::InvalidAudience => "the token's audience is not this master",
                K::MissingRequiredClaim(_) => {
                    "the token lacks a required claim (exp, sub, iss, aud)"
                }
                _ => "the token is not valid",
            })
        })?;
        let sub = data.claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| jwt_err("the token's sub is not a string"))?;
        let role = data.claims[&self.role_claim]
            .as_str()
            .and_then(Role::parse)
            .ok_or_else(|| {
                AuthError::Jwt(format!(
                    "the token's '{}' claim is not agent, viewer, editor or admin",
                    self.role_claim
                ))
            })?;
        Ok(Principal {
            name: sub.chars().take(128).collect(),
            role,
        })
    }
}

/// Fetches the keys of `source` into `keys`; on failure the old keys stay (logged).
fn store(source: &Source, keys: &RwLock<Vec<Key>>) {
    match source.load() {
        Ok(new) => {
            tracing::debug!("JWKS: {} keys from {}", new.len(), source.describe());
            *keys.write().unwrap_or_else(|p| p.into_inner()) = new;
        }
        Err(e) => tracing::warn!("cannot refresh the JWKS (the previous keys stay): {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_url_must_be_https_unless_it_is_loopback() {
        for ok in [
            "https://idp.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]/jwks",
            "http://localhost:9/jwks",
        ] {
            assert!(matches!(Source::parse(ok), Ok(Source::Url(_))), "{ok}");
        }
        for bad in [
            "http://idp.example/jwks",
            "http://10.0.0.1/jwks",
            "https://",
        ] {
            let e = Source::parse(bad).err().unwrap_or_else(|| panic!("{bad}"));
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(matches!(
            Source::parse("keys/jwks.json"),
            Ok(Source::File(_))
        ));
    }
}
