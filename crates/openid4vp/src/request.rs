//! The request object (JAR, RFC 9101) and the URL that carries it by reference.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jose::{EcdhKey, Enc, Signer};
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::dcql::{CredentialQuery, Format, dcql};
use crate::response::Pending;

/// How we identify ourselves to the wallet (the IT-Wallet rules require both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientId {
    /// `openid_federation:<entity id>`: the wallet resolves our trust chain and reads the
    /// `openid_credential_verifier` metadata; the request is signed with a federation key
    /// (`kid` from our Entity Configuration).
    Federation {
        /// Our Entity Identifier (an `https` URL).
        entity_id: String,
    },
    /// `x509_hash:<base64url SHA-256 of the leaf certificate>`: the request carries the
    /// relying-party access certificate chain in `x5c`, and is signed with the leaf's key.
    X509Hash {
        /// DER certificates, leaf first.
        chain: Vec<Vec<u8>>,
    },
}

impl ClientId {
    /// The `client_id` value, prefix included: also the `aud` a KB-JWT must carry.
    #[must_use]
    pub fn value(&self) -> String {
        match self {
            ClientId::Federation { entity_id } => format!("openid_federation:{entity_id}"),
            ClientId::X509Hash { chain } => {
                let leaf = chain.first().map(Vec::as_slice).unwrap_or_default();
                let hash = ring::digest::digest(&ring::digest::SHA256, leaf);
                format!("x509_hash:{}", URL_SAFE_NO_PAD.encode(hash))
            }
        }
    }
}

fn is_https(u: &str) -> bool {
    u.len() > 8
        && u.len() <= 2048
        && u[..8].eq_ignore_ascii_case("https://")
        && !u.contains(['#', ' ', '"'])
}

/// The verifier: who we are, how we sign, where the wallet answers.
#[derive(Debug)]
pub struct Verifier {
    client: ClientId,
    client_id: String,
    signer: Signer,
    response_uri: String,
    ttl: u64,
    encs: Vec<Enc>,
}

/// The `aud` of a request object for a wallet that was not told otherwise (OpenID4VP
/// 1.0 §5.8, static discovery).
const SELF_ISSUED: &str = "https://self-issued.me/v2";

/// Random bytes, base64url: nonces, state, jti.
fn random(rng: &dyn SecureRandom, n: usize) -> Result<String, Error> {
    let mut b = vec![0u8; n];
    rng.fill(&mut b).map_err(|_| Error::Jose {
        what: "random",
        cause: jose::Error::Crypto,
    })?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

impl Verifier {
    /// A verifier. `response_uri` and a federation entity id must be `https` URLs; an
    /// `x509_hash` chain must not be empty; `ttl` (seconds a request stays answerable)
    /// must be 1..=3600; `encs` must not be empty.
    pub fn new(
        client: ClientId,
        signer: Signer,
        response_uri: &str,
        ttl: u64,
        encs: Vec<Enc>,
    ) -> Result<Verifier, Error> {
        match &client {
            ClientId::Federation { entity_id } if !is_https(entity_id) => {
                return Err(Error::Config {
                    what: "entity id is not an https URL",
                });
            }
            ClientId::X509Hash { chain } if chain.is_empty() => {
                return Err(Error::Config {
                    what: "empty certificate chain",
                });
            }
            _ => {}
        }
        if !is_https(response_uri) {
            return Err(Error::Config {
                what: "response_uri is not an https URL",
            });
        }
        if ttl == 0 || ttl > 3600 {
            return Err(Error::Config {
                what: "request lifetime outside 1..=3600 seconds",
            });
        }
        if encs.is_empty() {
            return Err(Error::Config {
                what: "no content encryption algorithm",
            });
        }
        Ok(Verifier {
            client_id: client.value(),
            client,
            signer,
            response_uri: response_uri.to_owned(),
            ttl,
            encs,
        })
    }

    /// Our `client_id`, prefix included.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A signed request object for `queries`, and the pending request to keep until the
    /// wallet answers (at most `ttl` seconds). Fresh `nonce` and `state` (256 bits each)
    /// and a fresh encryption key every time.
    pub fn request(
        &self,
        queries: &[CredentialQuery],
        now: u64,
        rng: &dyn SecureRandom,
    ) -> Result<(String, Pending), Error> {
        if queries.is_empty() || queries.len() > 8 {
            return Err(Error::Config {
                what: "between 1 and 8 credential queries",
            });
        }
        for (i, q) in queries.iter().enumerate() {
            if !q.valid_id() || queries[..i].iter().any(|o| o.id == q.id) {
                return Err(Error::Config {
                    what: "credential query ids must be unique, [A-Za-z0-9_-]{1,64}",
                });
            }
        }
        let key = EcdhKey::generate(rng).map_err(|cause| Error::Jose {
            what: "encryption key",
            cause,
        })?;
        let nonce = random(rng, 32)?;
        let state = random(rng, 32)?;
        let exp = now.saturating_add(self.ttl);
        let mut formats = Map::new();
        for q in queries {
            match q.format {
                Format::SdJwt { .. } => formats.insert(
                    "dc+sd-jwt".into(),
                    json!({"sd-jwt_alg_values": ["ES256", "ES384", "PS256", "RS256"],
                           "kb-jwt_alg_values": ["ES256", "ES384"]}),
                ),
                Format::MsoMdoc { .. } => formats.insert(
                    "mso_mdoc".into(),
                    json!({"issuerauth_alg_values": [-7, -35], "deviceauth_alg_values": [-7, -35]}),
                ),
            };
        }
        let encs: Vec<&str> = self.encs.iter().map(|e| e.name()).collect();
        let iss = match &self.client {
            ClientId::Federation { entity_id } => entity_id.clone(),
            ClientId::X509Hash { .. } => self.client_id.clone(),
        };
        let claims = json!({
            "iss": iss,
            "aud": SELF_ISSUED,
            "client_id": self.client_id,
            "response_type": "vp_token",
            "response_mode": "direct_post.jwt",
            "response_uri": self.response_uri,
            "nonce": nonce,
            "state": state,
            "dcql_query": dcql(queries),
            "client_metadata": {
                "jwks": {"keys": [key.public_jwk()]},
                "encrypted_response_enc_values_supported": encs,
                "vp_formats_supported": formats,
            },
            "iat": now,
            "exp": exp,
            "jti": random(rng, 16)?,
        });
        let Value::Object(claims) = claims else {
            return Err(Error::Config { what: "claims" });
        };
        let mut header = Map::new();
        if let ClientId::X509Hash { chain } = &self.client {
            let x5c: Vec<Value> = chain
                .iter()
                .map(|c| Value::String(STANDARD.encode(c)))
                .collect();
            header.insert("x5c".into(), Value::Array(x5c));
        }
        let jar = self
            .signer
            .sign_with("oauth-authz-req+jwt", &header, &claims, rng)
            .map_err(|cause| Error::Jose {
                what: "request object",
                cause,
            })?;
        let pending = Pending {
            state,
            nonce,
            client_id: self.client_id.clone(),
            response_uri: self.response_uri.clone(),
            ids: queries.iter().map(|q| q.id.clone()).collect(),
            expires_at: exp,
            encs: self.encs.clone(),
            key,
        };
        Ok((jar, pending))
    }
}

/// The authorization request by reference: `<wallet_base>?client_id=...&request_uri=...`
/// (`wallet_base` e.g. `openid4vp://` or a wallet's universal link). The wallet fetches the
/// signed request object from `request_uri` with GET.
#[must_use]
pub fn authorization_url(wallet_base: &str, client_id: &str, request_uri: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .append_pair("request_uri_method", "get")
        .finish();
    let sep = if wallet_base.contains('?') { '&' } else { '?' };
    format!("{wallet_base}{sep}{query}")
}
