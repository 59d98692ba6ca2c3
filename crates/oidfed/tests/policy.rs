//! Metadata policies against the text of OpenID Federation 1.0 (§6.1): the worked merge
//! example, the essential/subset_of table, each operator's combination and merge rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oidfed::policy::{self, Policy};
use serde_json::{Map, Value, json};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn parse(v: Value) -> Result<Policy, oidfed::Error> {
    policy::parse(&obj(v), &[])
}

fn rp(params: Value) -> Value {
    json!({ "openid_relying_party": params })
}

/// Applies `pol` (one parameter `p`) to `input` (`None` = absent); the output or the code.
fn apply_one(pol: Value, input: Option<Value>) -> Result<Option<Value>, &'static str> {
    let p = parse(rp(json!({ "p": pol }))).map_err(|e| e.code())?;
    let mut md = Map::new();
    if let Some(v) = input {
        md.insert("p".into(), v);
    }
    let mut metadata = obj(json!({ "openid_relying_party": md }));
    policy::apply(&p, &mut metadata).map_err(|e| e.code())?;
    Ok(metadata["openid_relying_party"].get("p").cloned())
}

#[test]
fn specification_merge_example() {
    let ta = rp(json!({
        "grant_types": {
            "default": ["authorization_code"],
            "subset_of": ["authorization_code", "refresh_token"],
            "superset_of": ["authorization_code"]
        },
        "token_endpoint_auth_method": {
            "one_of": ["private_key_jwt", "self_signed_tls_client_auth"],
            "essential": true
        },
        "token_endpoint_auth_signing_alg": { "one_of": ["PS256", "ES256"] },
        "subject_type": { "value": "pairwise" },
        "contacts": { "add": ["helpdesk@federation.example.org"] }
    }));
    let int = rp(json!({
        "grant_types": { "subset_of": ["authorization_code"] },
        "token_endpoint_auth_method": { "one_of": ["self_signed_tls_client_auth"] },
        "contacts": { "add": ["helpdesk@org.example.org"] }
    }));
    let mut merged = parse(ta).unwrap();
    policy::merge(&mut merged, parse(int).unwrap()).unwrap();
    // "Example Merged Metadata Policy for RPs".
    let expected = rp(json!({
        "grant_types": {
            "default": ["authorization_code"],
            "superset_of": ["authorization_code"],
            "subset_of": ["authorization_code"]
        },
        "token_endpoint_auth_method": {
            "one_of": ["self_signed_tls_client_auth"],
            "essential": true
        },
        "token_endpoint_auth_signing_alg": { "one_of": ["PS256", "ES256"] },
        "subject_type": { "value": "pairwise" },
        "contacts": {
            "add": ["helpdesk@federation.example.org", "helpdesk@org.example.org"]
        }
    }));
    assert_eq!(policy::to_value(&merged), expected);
}

#[test]
fn specification_essential_subset_of_table() {
    // (essential, input, output) with subset_of [a,b,c], as in the specification's table.
    type Row = (bool, Option<Value>, Result<Option<Value>, &'static str>);
    let rows: [Row; 6] = [
        (true, Some(json!(["a", "e"])), Ok(Some(json!(["a"])))),
        (false, Some(json!(["a", "e"])), Ok(Some(json!(["a"])))),
        (true, Some(json!(["d", "e"])), Ok(Some(json!([])))),
        (false, Some(json!(["d", "e"])), Ok(Some(json!([])))),
        (true, None, Err("oidfed.policy_violation")),
        (false, None, Ok(None)),
    ];
    for (essential, input, want) in rows {
        let pol = json!({ "essential": essential, "subset_of": ["a", "b", "c"] });
        assert_eq!(apply_one(pol, input.clone()), want, "{essential} {input:?}");
    }
}

#[test]
fn operators_in_order() {
    assert_eq!(
        apply_one(json!({"value": "x"}), Some(json!("y"))),
        Ok(Some(json!("x")))
    );
    assert_eq!(
        apply_one(json!({"value": null}), Some(json!("y"))),
        Ok(None)
    );
    assert_eq!(
        apply_one(json!({"add": ["b"]}), Some(json!(["a", "b"]))),
        Ok(Some(json!(["a", "b"])))
    );
    assert_eq!(
        apply_one(json!({"add": ["b"]}), None),
        Ok(Some(json!(["b"])))
    );
    assert_eq!(
        apply_one(json!({"default": "d"}), None),
        Ok(Some(json!("d")))
    );
    assert_eq!(
        apply_one(json!({"default": "d"}), Some(json!("x"))),
        Ok(Some(json!("x")))
    );
    assert_eq!(
        apply_one(json!({"one_of": ["a", "b"]}), Some(json!("b"))),
        Ok(Some(json!("b")))
    );
    assert_eq!(apply_one(json!({"one_of": ["a", "b"]}), None), Ok(None));
    assert_eq!(
        apply_one(json!({"superset_of": ["a"]}), Some(json!(["a", "z"]))),
        Ok(Some(json!(["a", "z"])))
    );
    // default then one_of: the default is checked too.
    assert_eq!(
        apply_one(json!({"default": "c", "one_of": ["a", "b"]}), None),
        Err("oidfed.policy_violation")
    );
}

#[test]
fn violations_refused() {
    let v = Err("oidfed.policy_violation");
    assert_eq!(apply_one(json!({"one_of": ["a"]}), Some(json!("b"))), v);
    assert_eq!(apply_one(json!({"one_of": ["a"]}), Some(json!(["a"]))), v);
    assert_eq!(apply_one(json!({"subset_of": ["a"]}), Some(json!("a"))), v);
    assert_eq!(
        apply_one(json!({"superset_of": ["a", "b"]}), Some(json!(["a"]))),
        v
    );
    assert_eq!(apply_one(json!({"add": ["a"]}), Some(json!("scalar"))), v);
    assert_eq!(apply_one(json!({"essential": true}), None), v);
}

#[test]
fn illegal_combinations_refused() {
    let p = Err("oidfed.policy");
    for pol in [
        json!({"value": ["a"], "add": ["b"]}),
        json!({"value": null, "default": "x"}),
        json!({"value": "c", "one_of": ["a", "b"]}),
        json!({"value": ["a", "z"], "subset_of": ["a"]}),
        json!({"value": ["a"], "superset_of": ["a", "b"]}),
        json!({"value": null, "essential": true}),
        json!({"one_of": ["a"], "add": ["a"]}),
        json!({"one_of": ["a"], "subset_of": ["a"]}),
        json!({"one_of": ["a"], "superset_of": ["a"]}),
        json!({"add": ["z"], "subset_of": ["a"]}),
        json!({"subset_of": ["a"], "superset_of": ["a", "b"]}),
        json!({"essential": "yes"}),
        json!({"one_of": "a"}),
        json!({"default": null}),
    ] {
        assert_eq!(apply_one(pol.clone(), None), p, "{pol}");
    }
    // Legal ones.
    for pol in [
        json!({"value": ["a"], "add": ["a"], "subset_of": ["a", "b"], "superset_of": ["a"]}),
        json!({"value": "a", "one_of": ["a", "b"], "default": "b", "essential": true}),
        json!({"subset_of": ["a", "b"], "superset_of": ["a", "b"]}),
    ] {
        assert!(parse(rp(json!({ "p": pol.clone() }))).is_ok(), "{pol}");
    }
}

fn merge(sup: Value, sub: Value) -> Result<Value, &'static str> {
    let mut acc = parse(rp(json!({ "p": sup }))).map_err(|e| e.code())?;
    let next = parse(rp(json!({ "p": sub }))).map_err(|e| e.code())?;
    policy::merge(&mut acc, next).map_err(|e| e.code())?;
    Ok(policy::to_value(&acc)["openid_relying_party"]["p"].clone())
}

#[test]
fn merge_rules() {
    let p = Err("oidfed.policy");
    assert_eq!(merge(json!({"value": "a"}), json!({"value": "b"})), p);
    assert_eq!(
        merge(json!({"value": ["a", "b"]}), json!({"value": ["b", "a"]})),
        Ok(json!({"value": ["a", "b"]}))
    );
    assert_eq!(merge(json!({"default": "a"}), json!({"default": "b"})), p);
    assert_eq!(
        merge(json!({"one_of": ["a", "b"]}), json!({"one_of": ["c"]})),
        p
    );
    assert_eq!(
        merge(json!({"one_of": ["a", "b"]}), json!({"one_of": ["b", "c"]})),
        Ok(json!({"one_of": ["b"]}))
    );
    assert_eq!(
        merge(json!({"subset_of": ["a"]}), json!({"subset_of": ["b"]})),
        Ok(json!({"subset_of": []}))
    );
    assert_eq!(
        merge(json!({"superset_of": ["a"]}), json!({"superset_of": ["b"]})),
        Ok(json!({"superset_of": ["a", "b"]}))
    );
    assert_eq!(
        merge(json!({"add": ["a"]}), json!({"add": ["a", "b"]})),
        Ok(json!({"add": ["a", "b"]}))
    );
    // A subordinate can tighten essential, never relax it.
    assert_eq!(
        merge(json!({"essential": false}), json!({"essential": true})),
        Ok(json!({"essential": true}))
    );
    assert_eq!(
        merge(json!({"essential": true}), json!({"essential": false})),
        Ok(json!({"essential": true}))
    );
    // A merge that produces an illegal combination is refused.
    assert_eq!(
        merge(json!({"value": "c"}), json!({"one_of": ["a", "b"]})),
        p
    );
    assert_eq!(
        merge(json!({"subset_of": ["a"]}), json!({"superset_of": ["b"]})),
        p
    );
}

#[test]
fn unknown_operators_ignored_unless_critical() {
    let pol = rp(json!({ "p": { "regexp": "^a", "one_of": ["a"] } }));
    assert!(policy::parse(&obj(pol.clone()), &[]).is_ok());
    let e = policy::parse(&obj(pol.clone()), &["regexp".to_owned()]).unwrap_err();
    assert_eq!(e.code(), "oidfed.policy_crit");
    // Listing a standard operator as critical is malformed.
    let e = policy::parse(&obj(pol), &["one_of".to_owned()]).unwrap_err();
    assert_eq!(e.code(), "oidfed.policy");
}

#[test]
fn scope_is_a_space_separated_array() {
    assert_eq!(
        apply_one_named(
            "scope",
            json!({"subset_of": ["openid", "profile"]}),
            json!("openid email profile")
        ),
        Ok(Some(json!("openid profile")))
    );
    assert_eq!(
        apply_one_named("scope", json!({"superset_of": ["openid"]}), json!("email")),
        Err("oidfed.policy_violation")
    );
}

fn apply_one_named(name: &str, pol: Value, input: Value) -> Result<Option<Value>, &'static str> {
    let p = parse(rp(json!({ name: pol }))).map_err(|e| e.code())?;
    let mut metadata = obj(rp(json!({ name: input })));
    policy::apply(&p, &mut metadata).map_err(|e| e.code())?;
    Ok(metadata["openid_relying_party"].get(name).cloned())
}

#[test]
fn policy_for_absent_entity_type_applies_to_nothing() {
    let p = parse(json!({"openid_provider": {"p": {"essential": true}}})).unwrap();
    let mut md = obj(rp(json!({})));
    policy::apply(&p, &mut md).unwrap();
    assert_eq!(Value::Object(md), rp(json!({})));
}
