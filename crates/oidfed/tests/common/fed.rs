//! A federation built with our own signer (ES256), for bounds tests and the benchmark.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use jose::{Jwks, Signer};
use oidfed::{ResolverConfig, TrustAnchor, configuration_url};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Map, Value, json};

pub struct Fed {
    pub now: u64,
    pub docs: HashMap<String, String>,
    keys: HashMap<String, Signer>,
    rng: SystemRandom,
    /// RS256 with the project's RSA test keys instead of fresh ES256 keys.
    rsa: bool,
}

/// RSA test keys of the xmldsig suite (PKCS#8 DER; `crates/xmldsig/tests/keys/gen-keys.sh`).
const RSA_KEYS: [&[u8]; 4] = [
    include_bytes!("../../../xmldsig/tests/keys/idp-rsa3072.key.pk8.der"),
    include_bytes!("../../../xmldsig/tests/keys/idp-rsa2048.key.pk8.der"),
    include_bytes!("../../../xmldsig/tests/keys/sp-rsa2048.key.pk8.der"),
    include_bytes!("../../../xmldsig/tests/keys/attacker-rsa2048.key.pk8.der"),
];

pub fn fetch_endpoint(id: &str) -> String {
    format!("{id}/fetch")
}

impl Fed {
    pub fn new(now: u64) -> Fed {
        Fed {
            now,
            docs: HashMap::new(),
            keys: HashMap::new(),
            rng: SystemRandom::new(),
            rsa: false,
        }
    }

    /// A federation whose entities sign RS256 with the RSA test keys (at most four entities).
    pub fn new_rsa(now: u64) -> Fed {
        Fed {
            rsa: true,
            ..Fed::new(now)
        }
    }

    fn key(&mut self, id: &str) -> &Signer {
        if !self.keys.contains_key(id) && self.rsa {
            let der = RSA_KEYS[self.keys.len()];
            let s = Signer::rsa_from_pkcs8(jose::Alg::Rs256, der, None).unwrap();
            self.keys.insert(id.to_owned(), s);
        }
        if !self.keys.contains_key(id) {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.rng).unwrap();
            let s = Signer::es256_from_pkcs8(pkcs8.as_ref(), None, &self.rng).unwrap();
            self.keys.insert(id.to_owned(), s);
        }
        &self.keys[id]
    }

    pub fn jwks(&mut self, id: &str) -> Jwks {
        Jwks::from_keys(vec![self.key(id).jwk().clone()]).unwrap()
    }

    fn sign(&mut self, signer_id: &str, claims: Value) -> String {
        self.sign_as(signer_id, claims, "entity-statement+jwt")
    }

    /// `claims` signed by `signer_id`'s key with this `typ`.
    pub fn sign_as(&mut self, signer_id: &str, claims: Value, typ: &str) -> String {
        let claims: Map<String, Value> = claims.as_object().unwrap().clone();
        let rng = SystemRandom::new();
        self.key(signer_id).sign(typ, &claims, &rng).unwrap()
    }

    /// An Entity Configuration with `hints` (none for an anchor) and `metadata`.
    pub fn config(&mut self, id: &str, hints: &[&str], metadata: Value) {
        let jwks = self.jwks(id).to_value();
        let mut md = metadata;
        md["federation_entity"]["federation_fetch_endpoint"] = json!(fetch_endpoint(id));
        let mut c = json!({
            "iss": id, "sub": id, "iat": self.now - 10, "exp": self.now + 3600,
            "jwks": jwks, "metadata": md,
        });
        if !hints.is_empty() {
            c["authority_hints"] = json!(hints);
        }
        let t = self.sign(id, c);
        self.docs.insert(configuration_url(id), t);
    }

    /// A Subordinate Statement by `iss` about `sub`, with an optional `metadata_policy`.
    pub fn statement(&mut self, iss: &str, sub: &str, policy: Option<Value>) {
        let jwks = self.jwks(sub).to_value();
        self.statement_full(iss, sub, policy, jwks);
    }

    /// A Subordinate Statement that states `jwks` as the subject's keys.
    pub fn statement_with_jwks(&mut self, iss: &str, sub: &str, jwks: Value) {
        self.statement_full(iss, sub, None, jwks);
    }

    /// A Subordinate Statement with a policy and the given keys for the subject.
    pub fn statement_full(&mut self, iss: &str, sub: &str, policy: Option<Value>, jwks: Value) {
        let mut c = json!({
            "iss": iss, "sub": sub, "iat": self.now - 10, "exp": self.now + 7200, "jwks": jwks,
        });
        if let Some(p) = policy {
            c["metadata_policy"] = p;
        }
        let t = self.sign(iss, c);
        let url = format!(
            "{}?{}",
            fetch_endpoint(iss),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("sub", sub)
                .finish()
        );
        self.docs.insert(url, t);
    }

    pub fn config_for(&mut self, anchors: &[&str]) -> ResolverConfig {
        let anchors = anchors
            .iter()
            .map(|a| TrustAnchor {
                entity_id: (*a).to_owned(),
                jwks: self.jwks(a),
            })
            .collect();
        ResolverConfig::new(anchors)
    }
}

pub const TA: &str = "https://ta.example.it";
pub const SA: &str = "https://sa.example.it";
pub const SA2: &str = "https://sa2.example.it";
pub const OP: &str = "https://op.example.it";

/// The SPID shape with one more level: OP → SA → SA2 → TA (a 3-hop chain), RP policies on
/// two levels.
pub fn three_hop(now: u64) -> Fed {
    three_hop_in(Fed::new(now))
}

/// [`three_hop`] signed RS256 (the algorithm the SPID/CIE rules require everyone to support).
pub fn three_hop_rsa(now: u64) -> Fed {
    three_hop_in(Fed::new_rsa(now))
}

fn three_hop_in(mut f: Fed) -> Fed {
    f.config(
        TA,
        &[],
        json!({"federation_entity": {"organization_name": "TA"}}),
    );
    f.config(SA2, &[TA], json!({"federation_entity": {}}));
    f.config(SA, &[SA2], json!({"federation_entity": {}}));
    f.config(
        OP,
        &[SA],
        json!({
            "federation_entity": {"organization_name": "OP"},
            "openid_provider": {
                "issuer": OP,
                "authorization_endpoint": format!("{OP}/authorization"),
                "token_endpoint": format!("{OP}/token"),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "acr_values_supported": ["https://www.spid.gov.it/SpidL1",
                                         "https://www.spid.gov.it/SpidL2"],
                "scopes_supported": ["openid", "offline_access"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "client_registration_types_supported": ["automatic"]
            }
        }),
    );
    f.statement(
        TA,
        SA2,
        Some(json!({"openid_provider": {
            "id_token_signing_alg_values_supported": {"subset_of": ["RS256", "RS512", "ES256"]},
            "token_endpoint_auth_methods_supported": {"subset_of": ["private_key_jwt"], "essential": true},
            "client_registration_types_supported": {"superset_of": ["automatic"]}
        }})),
    );
    f.statement(SA2, SA, None);
    f.statement(
        SA,
        OP,
        Some(json!({"openid_provider": {
            "scopes_supported": {"add": ["openid"]},
            "acr_values_supported": {"essential": true}
        }})),
    );
    f
}
