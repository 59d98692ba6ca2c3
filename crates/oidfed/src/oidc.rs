//! The relying party side of the SPID/CIE OpenID Connect profile, pure: the OpenID
//! Provider's metadata as a resolved trust chain states it, the authorization request
//! (signed request object, PKCE S256), the `private_key_jwt` client assertion and token
//! request, and the checks of the ID token and of the UserInfo response (signed, then
//! encrypted). The broker does the HTTP and the clock; `now` is an argument.
//!
//! Invariants, stated as absences:
//! - no OP key but the `jwks` of its `openid_provider` metadata as the trust chain resolved
//!   it (policies applied): never a key from a token header, never a `jwks_uri` fetched on
//!   the OP's word;
//! - no ID token without `iss` = the chain's subject, our `client_id` in `aud` (and, when
//!   `aud` names others, `azp` = us), `exp`/`iat` within the skew, our `nonce`, an `acr`,
//!   and `at_hash` matching the access token (the profile makes it required);
//! - no UserInfo that is not a JWE to our key with the profile's algorithms, wrapping a JWS
//!   by the same OP keys, with `sub` equal to the ID token's, and `iss`/`aud` (optional
//!   there, OIDC Core 5.3.2) equal to the ID token's when present;
//! - no `none`, no HMAC, no algorithm outside [`jose::Alg`] (so no HS256 "signed" with the
//!   OP's public key as secret).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{Alg, CbcHs, JweLimits, Jwks, Jws, KeyAlg, Limits, RsaDecrypter, Signer, Typ};
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};

use crate::TrustChain;
use crate::statement::is_url;

/// The SPID/CIE attribute namespace (`$PREFIX` of the attribute table).
pub const ATTRIBUTE_PREFIX: &str = "https://attributes.eid.gov.it/";

/// Why an OP, a token response, an ID token or a UserInfo response was refused. Codes are
/// stable (`oidc.*`; a JOSE failure keeps its `jose.*` code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcError {
    /// The OP's resolved metadata lacks something the flow needs, or has it malformed.
    Metadata {
        /// The member.
        what: &'static str,
    },
    /// A JOSE-level refusal.
    Jose {
        /// Which document: "id token", "userinfo", "userinfo jwe".
        what: &'static str,
        /// The cause.
        cause: jose::Error,
    },
    /// The token endpoint answered something that is not a bearer token response.
    TokenResponse {
        /// Which rule failed.
        reason: &'static str,
    },
    /// A required claim is missing or of the wrong type.
    Claim {
        /// The claim.
        claim: &'static str,
    },
    /// `iss` is not the OP the request was sent to.
    Issuer,
    /// `aud` does not name us (or names others without `azp` = us).
    Audience,
    /// `exp` is past.
    Expired,
    /// `iat` is in the future.
    Future,
    /// `nonce` is not the one we sent.
    Nonce,
    /// `at_hash` does not match the access token.
    AtHash,
    /// The UserInfo `sub` is not the ID token's.
    Subject,
    /// Our own request could not be built or signed (configuration).
    Request,
}

impl OidcError {
    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::Metadata { .. } => "oidc.op_metadata",
            OidcError::Jose { cause, .. } => cause.code(),
            OidcError::TokenResponse { .. } => "oidc.token_response",
            OidcError::Claim { .. } => "oidc.claim",
            OidcError::Issuer => "oidc.iss",
            OidcError::Audience => "oidc.aud",
            OidcError::Expired => "oidc.expired",
            OidcError::Future => "oidc.iat_future",
            OidcError::Nonce => "oidc.nonce",
            OidcError::AtHash => "oidc.at_hash",
            OidcError::Subject => "oidc.sub_mismatch",
            OidcError::Request => "oidc.request",
        }
    }
}

impl std::fmt::Display for OidcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OidcError::Metadata { what } => write!(f, "OP metadata: {what} missing or invalid"),
            OidcError::Jose { what, cause } => write!(f, "{what}: {cause}"),
            OidcError::TokenResponse { reason } => write!(f, "token response: {reason}"),
            OidcError::Claim { claim } => write!(f, "claim {claim} missing or invalid"),
            OidcError::Issuer => f.write_str("iss is not the OP the request went to"),
            OidcError::Audience => f.write_str("aud does not name this relying party"),
            OidcError::Expired => f.write_str("token expired"),
            OidcError::Future => f.write_str("token issued in the future"),
            OidcError::Nonce => f.write_str("nonce is not the one sent"),
            OidcError::AtHash => f.write_str("at_hash does not match the access token"),
            OidcError::Subject => f.write_str("userinfo sub is not the ID token's"),
            OidcError::Request => f.write_str("the authorization request could not be built"),
        }
    }
}

impl std::error::Error for OidcError {}

fn md(what: &'static str) -> OidcError {
    OidcError::Metadata { what }
}

/// An OpenID Provider as its trust chain describes it.
#[derive(Debug, Clone)]
pub struct Provider {
    /// `issuer` (= the chain's subject).
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: String,
    /// `revocation_endpoint`, when offered.
    pub revocation_endpoint: Option<String>,
    /// The OP's signing keys (ID token, UserInfo JWS).
    pub jwks: Jwks,
    /// `acr_values_supported`.
    pub acr_values_supported: Vec<String>,
    /// Signature algorithms accepted from this OP: its `id_token_signing_alg_values_supported`
    /// within our allow-list (RS256 when it says nothing).
    pub algs: Vec<Alg>,
}

fn str_member(m: &Map<String, Value>, k: &'static str) -> Result<String, OidcError> {
    m.get(k)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(md(k))
}

fn url_member(
    m: &Map<String, Value>,
    k: &'static str,
    allow_http: bool,
) -> Result<String, OidcError> {
    let u = str_member(m, k)?;
    if is_url(&u, allow_http, true) {
        Ok(u)
    } else {
        Err(md(k))
    }
}

impl Provider {
    /// The provider described by `chain`'s resolved `openid_provider` metadata.
    pub fn from_chain(chain: &TrustChain, allow_http: bool) -> Result<Provider, OidcError> {
        let m = chain
            .metadata_of("openid_provider")
            .ok_or(md("openid_provider"))?;
        let issuer = str_member(m, "issuer")?;
        // The Entity Identifier is the issuer: an OP cannot claim to issue for another.
        if issuer.trim_end_matches('/') != chain.subject().trim_end_matches('/') {
            return Err(md("issuer"));
        }
        let jwks = m
            .get("jwks")
            .ok_or(md("jwks"))
            .and_then(|v| Jwks::from_value(v).map_err(|_| md("jwks")))?;
        if jwks.is_empty() {
            return Err(md("jwks"));
        }
        let list = |k: &'static str| -> Vec<String> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut algs: Vec<Alg> = list("id_token_signing_alg_values_supported")
            .iter()
            .filter_map(|a| Alg::from_name(a).ok())
            .collect();
        if !m.contains_key("id_token_signing_alg_values_supported") {
            algs.push(Alg::Rs256);
        }
        if algs.is_empty() {
            return Err(md("id_token_signing_alg_values_supported"));
        }
        Ok(Provider {
            issuer,
            authorization_endpoint: url_member(m, "authorization_endpoint", allow_http)?,
            token_endpoint: url_member(m, "token_endpoint", allow_http)?,
            userinfo_endpoint: url_member(m, "userinfo_endpoint", allow_http)?,
            revocation_endpoint: match m.get("revocation_endpoint") {
                None => None,
                Some(_) => Some(url_member(m, "revocation_endpoint", allow_http)?),
            },
            acr_values_supported: list("acr_values_supported"),
            algs,
            jwks,
        })
    }
}

/// PKCE S256: `BASE64URL(SHA-256(verifier))`.
#[must_use]
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// What our authorization request says.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// Our `client_id` (our Entity Identifier).
    pub client_id: &'a str,
    /// Our callback.
    pub redirect_uri: &'a str,
    /// `state`: the lookup key of the pending login.
    pub state: &'a str,
    /// `nonce`, echoed in the ID token.
    pub nonce: &'a str,
    /// The PKCE verifier (only its S256 challenge is sent).
    pub code_verifier: &'a str,
    /// `acr_values`, most preferred first.
    pub acr_values: &'a [&'a str],
    /// The `claims` parameter (`{"userinfo": {...}, "id_token": {...}}`).
    pub claims: &'a Value,
    /// `iat`.
    pub now: u64,
    /// Lifetime of the request object in seconds.
    pub ttl: u64,
    /// `jti` of the request object.
    pub jti: &'a str,
}

/// The authorization URL (query serialization) and the signed request object it carries.
/// The profile wants `scope`, `client_id` and `response_type` both as parameters and in the
/// request object; the others are in the request object, and repeated in the query for
/// OPs that read them there (they are equal, so never ambiguous).
pub fn authorization_url(
    provider: &Provider,
    req: &AuthRequest<'_>,
    signer: &Signer,
    rng: &dyn SecureRandom,
) -> Result<(String, String), OidcError> {
    let challenge = pkce_challenge(req.code_verifier);
    let acr = req.acr_values.join(" ");
    let mut claims = Map::new();
    for (k, v) in [
        ("iss", json!(req.client_id)),
        ("sub", json!(req.client_id)),
        (
            "aud",
            json!([provider.issuer, provider.authorization_endpoint]),
        ),
        ("client_id", json!(req.client_id)),
        ("response_type", json!("code")),
        ("scope", json!("openid")),
        ("redirect_uri", json!(req.redirect_uri)),
        ("state", json!(req.state)),
        ("nonce", json!(req.nonce)),
        ("code_challenge", json!(challenge)),
        ("code_challenge_method", json!("S256")),
        ("prompt", json!("consent login")),
        ("acr_values", json!(acr)),
        ("claims", req.claims.clone()),
        ("iat", json!(req.now)),
        ("exp", json!(req.now.saturating_add(req.ttl))),
        ("jti", json!(req.jti)),
    ] {
        claims.insert(k.into(), v);
    }
    let request = signer
        .sign("oauth-authz-req+jwt", &claims, rng)
        .map_err(|_| OidcError::Request)?;
    let claims_json = serde_json::to_string(req.claims).map_err(|_| OidcError::Request)?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", req.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", req.redirect_uri)
        .append_pair("state", req.state)
        .append_pair("nonce", req.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "consent login")
        .append_pair("acr_values", &acr)
        .append_pair("claims", &claims_json)
        .append_pair("request", &request)
        .finish();
    let sep = if provider.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok((
        format!("{}{sep}{query}", provider.authorization_endpoint),
        request,
    ))
}

/// The `private_key_jwt` client assertion for `audience` (the token or revocation
/// endpoint): `iss` = `sub` = `client_id`, one `jti`, a short lifetime.
pub fn client_assertion(
    signer: &Signer,
    client_id: &str,
    audience: &str,
    now: u64,
    jti: &str,
    rng: &dyn SecureRandom,
) -> Result<String, OidcError> {
    let mut c = Map::new();
    c.insert("iss".into(), json!(client_id));
    c.insert("sub".into(), json!(client_id));
    c.insert("aud".into(), json!(audience));
    c.insert("iat".into(), json!(now));
    c.insert("exp".into(), json!(now.saturating_add(60)));
    c.insert("jti".into(), json!(jti));
    signer.sign("JWT", &c, rng).map_err(|_| OidcError::Request)
}

/// The client assertion type of RFC 7523.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The form body of the token request (authorization code grant).
#[must_use]
pub fn token_request_body(
    client_id: &str,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
    state: &str,
    assertion: &str,
) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("client_id", client_id)
        .append_pair("code", code)
        .append_pair("code_verifier", code_verifier)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("client_assertion_type", ASSERTION_TYPE)
        .append_pair("client_assertion", assertion)
        .finish()
}

/// The form body of a token revocation request (RFC 7009, `private_key_jwt`).
#[must_use]
pub fn revocation_body(client_id: &str, token: &str, assertion: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("token", token)
        .append_pair("token_type_hint", "access_token")
        .append_pair("client_assertion_type", ASSERTION_TYPE)
        .append_pair("client_assertion", assertion)
        .finish()
}

/// The members of a token response we use.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// `access_token`.
    pub access_token: String,
    /// `id_token`.
    pub id_token: String,
}

/// Longest token response accepted, in bytes.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Reads a token response: strict JSON, `token_type` Bearer, both tokens present.
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, OidcError> {
    let tr = |reason| OidcError::TokenResponse { reason };
    if body.len() > MAX_TOKEN_RESPONSE {
        return Err(tr("too large"));
    }
    let m =
        jose::json::parse_object(body, 4, "token response").map_err(|_| tr("not a JSON object"))?;
    let get = |k: &str| m.get(k).and_then(Value::as_str);
    if !get("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return Err(tr("token_type is not Bearer"));
    }
    match (get("access_token"), get("id_token")) {
        (Some(a), Some(i)) if !a.is_empty() && !i.is_empty() => Ok(TokenResponse {
            access_token: a.to_owned(),
            id_token: i.to_owned(),
        }),
        _ => Err(tr("access_token or id_token missing")),
    }
}

/// What the ID token must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Our `client_id`.
    pub client_id: &'a str,
    /// The `nonce` we sent.
    pub nonce: &'a str,
    /// The access token of the same response (for `at_hash`).
    pub access_token: &'a str,
    /// Now, Unix seconds.
    pub now: u64,
    /// Allowed clock skew in seconds.
    pub skew: u64,
}

/// A validated ID token.
#[derive(Debug, Clone)]
pub struct IdToken {
    /// `sub` (pairwise, per OP).
    pub sub: String,
    /// `acr` as asserted (the caller maps it to its level scale).
    pub acr: String,
    /// `iat`.
    pub iat: u64,
    /// Every claim.
    pub claims: Map<String, Value>,
}

/// JWS limits for ID tokens and UserInfo JWTs: a few KiB in practice.
pub fn token_limits() -> Limits {
    Limits {
        max_token_bytes: 16 * 1024,
        max_header_bytes: 1024,
        max_depth: 6,
    }
}

/// JWE limits for the UserInfo response.
pub fn userinfo_limits() -> JweLimits {
    JweLimits {
        max_bytes: 64 * 1024,
        max_header_bytes: 1024,
    }
}

fn verified(
    what: &'static str,
    token: &str,
    provider: &Provider,
) -> Result<Map<String, Value>, OidcError> {
    let jose_err = |cause| OidcError::Jose { what, cause };
    let jws = Jws::decode(token, Typ::JwtOrAbsent, &token_limits()).map_err(jose_err)?;
    if !provider.algs.contains(&jws.alg()) {
        return Err(jose_err(jose::Error::AlgUnsupported {
            alg: jws.alg().name().into(),
        }));
    }
    jws.into_verified_claims(&provider.jwks).map_err(jose_err)
}

fn check_iss_aud(
    c: &Map<String, Value>,
    provider: &Provider,
    client_id: &str,
) -> Result<(), OidcError> {
    if c.get("iss").and_then(Value::as_str) != Some(provider.issuer.as_str()) {
        return Err(OidcError::Issuer);
    }
    match c.get("aud") {
        Some(Value::String(a)) if a == client_id => Ok(()),
        Some(Value::Array(a)) if a.iter().any(|v| v.as_str() == Some(client_id)) => {
            // Several audiences: OIDC Core 3.1.3.7 wants `azp`, and it must be us.
            if a.len() == 1 || c.get("azp").and_then(Value::as_str) == Some(client_id) {
                Ok(())
            } else {
                Err(OidcError::Audience)
            }
        }
        _ => Err(OidcError::Audience),
    }
}

/// The UserInfo form of [`check_iss_aud`]: `iss` and `aud` each checked only when present.
fn check_present_iss_aud(
    c: &Map<String, Value>,
    provider: &Provider,
    client_id: &str,
) -> Result<(), OidcError> {
    let mut both = c.clone();
    both.entry("iss").or_insert_with(|| json!(provider.issuer));
    both.entry("aud").or_insert_with(|| json!(client_id));
    check_iss_aud(&both, provider, client_id)
}

fn number(c: &Map<String, Value>, k: &'static str) -> Result<u64, OidcError> {
    c.get(k)
        .and_then(Value::as_u64)
        .ok_or(OidcError::Claim { claim: k })
}

/// OIDC Core 3.1.3.6: the left half of the hash of the access token, with the hash of the
/// token's signature algorithm.
fn at_hash(alg: Alg, access_token: &str) -> String {
    let d = match alg {
        Alg::Rs384 | Alg::Ps384 | Alg::Es384 => &ring::digest::SHA384,
        Alg::Rs512 | Alg::Ps512 => &ring::digest::SHA512,
        _ => &ring::digest::SHA256,
    };
    let h = ring::digest::digest(d, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&h.as_ref()[..h.as_ref().len() / 2])
}

/// Validates an ID token from `provider` (see the module invariants).
pub fn validate_id_token(
    token: &str,
    provider: &Provider,
    exp: &Expected<'_>,
) -> Result<IdToken, OidcError> {
    let alg = Jws::decode(token, Typ::JwtOrAbsent, &token_limits())
        .map_err(|cause| OidcError::Jose {
            what: "id token",
            cause,
        })?
        .alg();
    let c = verified("id token", token, provider)?;
    check_iss_aud(&c, provider, exp.client_id)?;
    let e = number(&c, "exp")?;
    let iat = number(&c, "iat")?;
    if exp.now >= e.saturating_add(exp.skew) {
        return Err(OidcError::Expired);
    }
    if iat > exp.now.saturating_add(exp.skew) {
        return Err(OidcError::Future);
    }
    // Compared as bytes of equal meaning: both are ours or the attacker's; no secret leaks
    // through the timing of a nonce comparison (the nonce is in the front channel anyway).
    if c.get("nonce").and_then(Value::as_str) != Some(exp.nonce) {
        return Err(OidcError::Nonce);
    }
    match c.get("at_hash").and_then(Value::as_str) {
        Some(h) if h == at_hash(alg, exp.access_token) => {}
        Some(_) => return Err(OidcError::AtHash),
        None => return Err(OidcError::Claim { claim: "at_hash" }),
    }
    let sub = c
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or(OidcError::Claim { claim: "sub" })?
        .to_owned();
    let acr = c
        .get("acr")
        .and_then(Value::as_str)
        .ok_or(OidcError::Claim { claim: "acr" })?
        .to_owned();
    Ok(IdToken {
        sub,
        acr,
        iat,
        claims: c,
    })
}

/// A validated UserInfo response.
#[derive(Debug, Clone)]
pub struct UserInfo {
    /// Its claims.
    pub claims: Map<String, Value>,
    /// The decrypted JWS as the OP signed it (evidence for the audit record).
    pub jws: String,
}

/// Decrypts and validates a UserInfo response (the body as received: a compact JWE whose
/// plaintext is a JWS).
pub fn validate_userinfo(
    body: &str,
    key: &RsaDecrypter,
    provider: &Provider,
    id_token: &IdToken,
    client_id: &str,
) -> Result<UserInfo, OidcError> {
    let plain = key
        .decrypt(
            body.trim(),
            &[KeyAlg::RsaOaep, KeyAlg::RsaOaep256],
            &[CbcHs::A128CbcHs256, CbcHs::A256CbcHs512],
            &userinfo_limits(),
        )
        .map_err(|cause| OidcError::Jose {
            what: "userinfo jwe",
            cause,
        })?;
    let inner = std::str::from_utf8(&plain).map_err(|_| OidcError::Jose {
        what: "userinfo",
        cause: jose::Error::Malformed,
    })?;
    let c = verified("userinfo", inner, provider)?;
    // OIDC Core 5.3.2: a signed UserInfo response SHOULD (not MUST) carry `iss` and `aud`,
    // and the reference SPID/CIE OP (spid-cie-oidc) sends neither. What binds the response
    // to this OP and to us without them: the JWS verifies only with this OP's chain keys,
    // the JWE opens only with our encryption key, it answers our own back-channel call with
    // the access token just issued to us, and its `sub` (5.3.2: MUST) equals the ID token's,
    // whose `iss`/`aud` were checked. So each is checked when present and refused if wrong.
    check_present_iss_aud(&c, provider, client_id)?;
    if c.get("sub").and_then(Value::as_str) != Some(id_token.sub.as_str()) {
        return Err(OidcError::Subject);
    }
    Ok(UserInfo {
        claims: c,
        jws: inner.to_owned(),
    })
}

/// The attribute names (the SAML ones `identity::normalize` reads) of the OIDC claims that
/// have one. String-valued claims only; anything else is ignored, as unknown attributes are.
#[must_use]
pub fn claims_to_attributes(claims: &Map<String, Value>) -> Vec<(String, Vec<String>)> {
    const MAP: [(&str, &str); 7] = [
        ("fiscal_number", "fiscalNumber"),
        ("given_name", "name"),
        ("family_name", "familyName"),
        ("birthdate", "dateOfBirth"),
        ("email", "email"),
        ("phone_number", "mobilePhone"),
        ("mobile_phone", "mobilePhone"),
    ];
    let mut out = Vec::new();
    for (claim, value) in claims {
        let bare = claim.strip_prefix(ATTRIBUTE_PREFIX).unwrap_or(claim);
        if let (Some((_, attr)), Some(v)) = (MAP.iter().find(|(c, _)| *c == bare), value.as_str()) {
            out.push(((*attr).to_owned(), vec![v.to_owned()]));
        }
    }
    out
}

/// The `claims` request parameter for the attributes Varco maps: essential fiscal number,
/// names, and the optional contact details.
#[must_use]
pub fn default_claims_request() -> Value {
    json!({
        "id_token": {
            "given_name": {"essential": true},
            "family_name": {"essential": true},
        },
        "userinfo": {
            "given_name": null,
            "family_name": null,
            "https://attributes.eid.gov.it/fiscal_number": {"essential": true},
            "email": null,
            "birthdate": null,
        }
    })
}
