//! JWT bearer tokens from an external identity provider (OIDC style), verified with the
//! `jsonwebtoken` crate against a JWKS file: RS256 or ES256 only, the key chosen by the
//! token's `kid`, issuer and audience checked, `exp` required and `nbf` honoured with a
//! small leeway. The caller is the `sub` claim; the role comes from a configurable claim.

use super::{AuthError, Principal, Role, SecurityError};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use std::path::Path;

/// How JWTs are verified.
pub struct JwtVerifier {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    role_claim: String,
    leeway_s: u64,
}

impl JwtVerifier {
    /// Reads the JWKS at `path` (RSA and P-256 EC keys are used; others are skipped).
    pub fn from_file(
        path: &Path,
        issuer: &str,
        audience: &str,
        role_claim: &str,
        leeway_s: u64,
    ) -> Result<JwtVerifier, SecurityError> {
        let bad = |m: String| SecurityError::Invalid(format!("JWKS {}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
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
        Ok(JwtVerifier {
            keys,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            role_claim: role_claim.to_string(),
            leeway_s,
        })
    }

    /// Verifies a JWT and returns its caller.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let jwt_err = |m: &str| AuthError::Jwt(m.to_string());
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(jwt_err("only RS256 and ES256 tokens are accepted"));
        }
        let (_, alg, key) = self
            .keys
            .iter()
            .find(|(kid, alg, _)| {
                *alg == header.alg && (header.kid.is_none() || *kid == header.kid)
            })
            .ok_or_else(|| jwt_err("no key of the JWKS matches the token's kid and alg"))?;
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = self.leeway_s;
        let data = decode::<serde_json::Value>(token, key, &v).map_err(|e| {
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
                    "the token's '{}' claim is not viewer, editor or admin",
                    self.role_claim
                ))
            })?;
        Ok(Principal {
            name: sub.chars().take(128).collect(),
            role,
        })
    }
}
