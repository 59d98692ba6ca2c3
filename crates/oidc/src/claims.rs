//! What the client learns about the person: the ID token's claims, UserInfo per scope, the
//! subject the client sees, and the per-client session id of Back-Channel Logout.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::Principal;
use identity::represent::Acting;
use ring::digest;
use serde_json::{Map, Value, json};

use crate::scope::{Scope, Scopes};
use crate::{Client, SubjectType};

/// The `sub` this client sees for `principal`: the principal's own, or its pairwise
/// pseudonym.
#[must_use]
pub fn subject(client: &Client, principal: &Principal) -> String {
    subject_of(client, &principal.sub)
}

/// The `sub` this client sees for the person whose own `sub` is `sub`.
fn subject_of(client: &Client, sub: &str) -> String {
    match &client.subject_type {
        SubjectType::Public => sub.to_owned(),
        SubjectType::Pairwise { sector, salt } => {
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(salt);
            ctx.update(sector.as_bytes());
            ctx.update(&[0]);
            ctx.update(sub.as_bytes());
            URL_SAFE_NO_PAD.encode(ctx.finish())
        }
    }
}

/// The `sid` this client sees for the broker session `sid`: a digest, so a client never
/// holds the broker's own session id, and two clients' values cannot be matched.
#[must_use]
pub fn client_sid(client_id: &str, sid: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"varco-oidc-sid\0");
    ctx.update(client_id.as_bytes());
    ctx.update(&[0]);
    ctx.update(sid.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.finish())
}

/// `at_hash` (Core §3.1.3.6) for an ES256-signed ID token: the left half of the SHA-256 of
/// the access token. `None` for other algorithms (the claim is optional in the code flow).
#[must_use]
pub fn at_hash(alg: &str, access_token: &str) -> Option<String> {
    (alg == "ES256").then(|| {
        let d = digest::digest(&digest::SHA256, access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
    })
}

/// What an ID token says besides the person.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenParams<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// The authorization request's `nonce`.
    pub nonce: Option<&'a str>,
    /// The broker session the login belongs to.
    pub sid: &'a str,
    /// `at_hash`, if any.
    pub at_hash: Option<&'a str>,
    /// `iat`.
    pub now: u64,
    /// Lifetime, seconds.
    pub ttl: u64,
}

/// The claims of an ID token (Core §2): `iss`, `sub`, `aud` (the client), `azp`, `exp`,
/// `iat`, `auth_time`, `nonce`, `acr` (the eIDAS URI of the level), `amr` (the method),
/// `sid`, and `at_hash`. The person's other claims come from UserInfo.
#[must_use]
pub fn id_token(
    client: &Client,
    principal: &Principal,
    p: &IdTokenParams<'_>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("iss".into(), p.issuer.into());
    m.insert("sub".into(), subject(client, principal).into());
    m.insert("aud".into(), client.id.clone().into());
    m.insert("azp".into(), client.id.clone().into());
    m.insert("iat".into(), p.now.into());
    m.insert("exp".into(), p.now.saturating_add(p.ttl).into());
    m.insert("auth_time".into(), principal.auth.auth_time.into());
    if let Some(n) = p.nonce {
        m.insert("nonce".into(), n.into());
    }
    m.insert("acr".into(), principal.auth.loa.eidas_uri().into());
    m.insert("amr".into(), json!([principal.auth.method.as_str()]));
    m.insert("sid".into(), client_sid(&client.id, p.sid).into());
    if let Some(h) = p.at_hash {
        m.insert("at_hash".into(), h.into());
    }
    m
}

/// The UserInfo answer for `scopes` (docs/IDENTITY.md, "OpenID Connect claims"): `sub`
/// always, then `profile` (`given_name`, `family_name`, `name`, `birthdate`), `email`,
/// `phone` (`phone_number`), `address` (`address.formatted`). Absent values are left out.
#[must_use]
pub fn userinfo(client: &Client, principal: &Principal, scopes: Scopes) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sub".into(), subject(client, principal).into());
    let mut put = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(name.into(), v.clone().into());
        }
    };
    if scopes.contains(Scope::Profile) {
        put("given_name", &principal.given_name);
        put("family_name", &principal.family_name);
        let name = match (&principal.given_name, &principal.family_name) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            _ => None,
        };
        put("name", &name);
        put("birthdate", &principal.birthdate);
    }
    if scopes.contains(Scope::Email) {
        put("email", &principal.email);
    }
    if scopes.contains(Scope::Phone) {
        put("phone_number", &principal.phone_number);
    }
    if scopes.contains(Scope::Address) {
        if let Some(a) = &principal.address {
            m.insert("address".into(), json!({ "formatted": a.formatted }));
        }
    }
    m
}

/// Adds the claims of an acting identity (issue 24) to an ID token or UserInfo answer whose
/// `sub` is already the represented party's: `act` (RFC 8693 §4.1, the delegate as
/// `identity::represent` serializes them for the downstream JWT) and `representation` (its
/// type, services, validity, source and reference, the same object the JWT carries).
///
/// A pairwise client sees the delegate's `act.sub` as a pairwise pseudonym too: otherwise it
/// would learn the delegate's public identifier, which pairwise subjects exist to hide.
/// Nothing here comes from the client's request: the values are the broker's only.
pub fn add_acting(client: &Client, acting: &Acting, m: &mut Map<String, Value>) {
    let mut act = serde_json::to_value(acting.actor()).unwrap_or(Value::Null);
    if let Some(o) = act.as_object_mut() {
        o.insert(
            "sub".into(),
            subject_of(client, acting.actor().sub()).into(),
        );
    }
    m.insert("act".into(), act);
    m.insert(
        "representation".into(),
        serde_json::to_value(acting.representation()).unwrap_or(Value::Null),
    );
}

/// The claim names UserInfo can return (discovery).
pub const CLAIMS_SUPPORTED: [&str; 17] = [
    "sub",
    "iss",
    "aud",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "sid",
    "given_name",
    "family_name",
    "name",
    "birthdate",
    "email",
    "phone_number",
    "address",
    "act",
    "representation",
];
