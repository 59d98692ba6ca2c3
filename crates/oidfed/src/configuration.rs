//! Our own Entity Configuration, served at `/.well-known/openid-federation`: a relying party
//! of the SPID and CIE OpenID Connect federations.

use jose::{Jwk, Jwks, Signer};
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::statement::{ENTITY_STATEMENT_TYP, TrustMarkEntry, is_entity_id, is_url};

/// What our relying party declares. The OIDC choices the SPID/CIE rules fix are not
/// settings: `client_registration_types` `["automatic"]`, `response_types` `["code"]`,
/// `grant_types` `["authorization_code", "refresh_token"]`, `token_endpoint_auth_method`
/// `private_key_jwt`, `application_type` `web`, `client_id` = the Entity Identifier.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    /// Entity Identifier (also `client_id`).
    pub entity_id: String,
    /// Immediate superiors (the Trust Anchor, or an aggregator).
    pub authority_hints: Vec<String>,
    /// Trust marks issued to us, published as received.
    pub trust_marks: Vec<TrustMarkEntry>,
    /// `federation_entity.organization_name`.
    pub organization_name: String,
    /// `federation_entity.homepage_uri`.
    pub homepage_uri: String,
    /// `federation_entity.policy_uri`.
    pub policy_uri: String,
    /// `federation_entity.logo_uri` (SVG, per the SPID/CIE rules).
    pub logo_uri: String,
    /// `contacts` (institutional PEC address first).
    pub contacts: Vec<String>,
    /// `federation_entity.federation_resolve_endpoint`, when we offer one.
    pub federation_resolve_endpoint: Option<String>,
    /// `openid_relying_party.client_name`.
    pub client_name: String,
    /// `openid_relying_party.redirect_uris` (https).
    pub redirect_uris: Vec<String>,
    /// `openid_relying_party.jwks`: the OIDC keys (request objects, client assertions, and
    /// the encryption key for UserInfo), already rendered as a public JWKS; distinct from the
    /// federation keys, as the rules recommend.
    pub rp_jwks: Value,
    /// `id_token_signed_response_alg` (RS256 unless the federation says otherwise).
    pub id_token_signed_response_alg: String,
    /// `userinfo_signed_response_alg`.
    pub userinfo_signed_response_alg: String,
    /// `userinfo_encrypted_response_alg` (e.g. RSA-OAEP-256).
    pub userinfo_encrypted_response_alg: String,
    /// `userinfo_encrypted_response_enc` (e.g. A256CBC-HS512).
    pub userinfo_encrypted_response_enc: String,
}

fn cfg(what: &'static str) -> Error {
    Error::Config { what }
}

impl RelyingParty {
    fn check(&self, allow_http: bool) -> Result<(), Error> {
        if !is_entity_id(&self.entity_id, allow_http) {
            return Err(cfg("entity_id"));
        }
        if self.authority_hints.is_empty()
            || !self
                .authority_hints
                .iter()
                .all(|h| is_entity_id(h, allow_http))
        {
            return Err(cfg("authority_hints"));
        }
        if self.redirect_uris.is_empty()
            || !self
                .redirect_uris
                .iter()
                .all(|u| is_url(u, allow_http, true))
        {
            return Err(cfg("redirect_uris"));
        }
        if self.contacts.is_empty() || self.contacts.iter().any(String::is_empty) {
            return Err(cfg("contacts"));
        }
        for (what, v) in [
            ("organization_name", &self.organization_name),
            ("client_name", &self.client_name),
        ] {
            if v.trim().is_empty() {
                return Err(cfg(what));
            }
        }
        for (what, v) in [
            ("homepage_uri", &self.homepage_uri),
            ("policy_uri", &self.policy_uri),
            ("logo_uri", &self.logo_uri),
        ] {
            if !is_url(v, false, true) {
                return Err(cfg(what));
            }
        }
        if let Some(e) = &self.federation_resolve_endpoint {
            if !is_url(e, false, true) {
                return Err(cfg("federation_resolve_endpoint"));
            }
        }
        match Jwks::from_value(&self.rp_jwks) {
            Ok(k) if !k.is_empty() => {}
            _ => return Err(cfg("rp_jwks")),
        }
        Ok(())
    }

    /// The `metadata` claim.
    #[must_use]
    pub fn metadata(&self) -> Value {
        let mut fe = json!({
            "organization_name": self.organization_name,
            "homepage_uri": self.homepage_uri,
            "policy_uri": self.policy_uri,
            "logo_uri": self.logo_uri,
            "contacts": self.contacts,
        });
        if let (Some(e), Value::Object(m)) = (&self.federation_resolve_endpoint, &mut fe) {
            m.insert(
                "federation_resolve_endpoint".into(),
                Value::String(e.clone()),
            );
        }
        json!({
            "federation_entity": fe,
            "openid_relying_party": {
                "application_type": "web",
                "client_id": self.entity_id,
                "client_registration_types": ["automatic"],
                "client_name": self.client_name,
                "contacts": self.contacts,
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": self.redirect_uris,
                "response_types": ["code"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": self.rp_jwks,
                "id_token_signed_response_alg": self.id_token_signed_response_alg,
                "userinfo_signed_response_alg": self.userinfo_signed_response_alg,
                "userinfo_encrypted_response_alg": self.userinfo_encrypted_response_alg,
                "userinfo_encrypted_response_enc": self.userinfo_encrypted_response_enc,
            }
        })
    }

    /// The signed Entity Configuration: `iss` = `sub` = our Entity Identifier, `iat`, `exp`
    /// = `iat + ttl`, `jwks` = the signer's key and `next_keys` (published ahead of a
    /// rollover), metadata, `authority_hints`, `trust_marks`.
    pub fn sign(
        &self,
        signer: &Signer,
        next_keys: &[Jwk],
        iat: u64,
        ttl: u64,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        self.sign_inner(signer, next_keys, iat, ttl, rng, false)
    }

    /// [`RelyingParty::sign`] for a loopback test federation: `http` Entity Identifiers and
    /// redirect URIs accepted (the resolver's `allow_http` counterpart).
    pub fn sign_allow_http(
        &self,
        signer: &Signer,
        next_keys: &[Jwk],
        iat: u64,
        ttl: u64,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        self.sign_inner(signer, next_keys, iat, ttl, rng, true)
    }

    fn sign_inner(
        &self,
        signer: &Signer,
        next_keys: &[Jwk],
        iat: u64,
        ttl: u64,
        rng: &dyn SecureRandom,
        allow_http: bool,
    ) -> Result<String, Error> {
        self.check(allow_http)?;
        let mut keys = vec![signer.jwk().clone()];
        keys.extend(next_keys.iter().cloned());
        let jwks = Jwks::from_keys(keys).map_err(|_| cfg("federation keys"))?;
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::String(self.entity_id.clone()));
        claims.insert("sub".into(), Value::String(self.entity_id.clone()));
        claims.insert("iat".into(), Value::from(iat));
        claims.insert("exp".into(), Value::from(iat.saturating_add(ttl)));
        claims.insert("jwks".into(), jwks.to_value());
        claims.insert("metadata".into(), self.metadata());
        claims.insert("authority_hints".into(), json!(self.authority_hints));
        if !self.trust_marks.is_empty() {
            let marks: Vec<Value> = self
                .trust_marks
                .iter()
                .map(|t| {
                    // Both names: `trust_mark_type` for OpenID Federation 1.0, `id` for the
                    // SPID/CIE profile's readers. They are equal, so never ambiguous.
                    json!({
                        "trust_mark_type": t.trust_mark_type,
                        "id": t.trust_mark_type,
                        "trust_mark": t.trust_mark,
                    })
                })
                .collect();
            claims.insert("trust_marks".into(), Value::Array(marks));
        }
        signer
            .sign(ENTITY_STATEMENT_TYP, &claims, rng)
            .map_err(|_| cfg("signing key"))
    }
}
