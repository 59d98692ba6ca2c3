//! Metadata policies (OpenID Federation 1.0 §6.1): parse and check one policy, merge the
//! chain's policies from the Trust Anchor down, apply the result to the subject's metadata.
//!
//! The seven standard operators only. An unknown operator is ignored unless a statement
//! lists it in `metadata_policy_crit`, which makes it a policy error. Every error refuses
//! the chain: there is no "best effort" metadata.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::Error;

/// The operators of one metadata parameter's policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamPolicy {
    /// `value`: `Some(Value::Null)` removes the parameter.
    pub value: Option<Value>,
    /// `add`.
    pub add: Option<Vec<Value>>,
    /// `default`.
    pub default: Option<Value>,
    /// `one_of`.
    pub one_of: Option<Vec<Value>>,
    /// `subset_of`.
    pub subset_of: Option<Vec<Value>>,
    /// `superset_of`.
    pub superset_of: Option<Vec<Value>>,
    /// `essential`.
    pub essential: Option<bool>,
}

/// A metadata policy: entity type → parameter → operators.
pub type Policy = BTreeMap<String, BTreeMap<String, ParamPolicy>>;

const STANDARD: [&str; 7] = [
    "value",
    "add",
    "default",
    "one_of",
    "subset_of",
    "superset_of",
    "essential",
];

fn perr(at: &str, reason: &'static str) -> Error {
    Error::Policy {
        at: at.to_owned(),
        reason,
    }
}

fn contains(set: &[Value], v: &Value) -> bool {
    set.iter().any(|s| s == v)
}

fn is_subset(a: &[Value], b: &[Value]) -> bool {
    a.iter().all(|v| contains(b, v))
}

/// Equality for `value` and `default` merges: arrays as sets, everything else as JSON.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => is_subset(x, y) && is_subset(y, x),
        _ => a == b,
    }
}

fn scalar_or_array(v: &Value) -> bool {
    matches!(
        v,
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Array(_)
    )
}

fn array(v: &Value, at: &str) -> Result<Vec<Value>, Error> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        _ => Err(perr(at, "operator value must be an array")),
    }
}

impl ParamPolicy {
    fn parse(ops: &Map<String, Value>, crit: &[String], at: &str) -> Result<ParamPolicy, Error> {
        let mut p = ParamPolicy::default();
        for (name, v) in ops {
            match name.as_str() {
                "value" => {
                    if !(scalar_or_array(v) || v.is_null()) {
                        return Err(perr(
                            at,
                            "value must be a string, number, boolean, array or null",
                        ));
                    }
                    p.value = Some(v.clone());
                }
                "add" => p.add = Some(array(v, at)?),
                "default" => {
                    if !scalar_or_array(v) {
                        return Err(perr(
                            at,
                            "default must be a string, number, boolean or array",
                        ));
                    }
                    p.default = Some(v.clone());
                }
                "one_of" => p.one_of = Some(array(v, at)?),
                "subset_of" => p.subset_of = Some(array(v, at)?),
                "superset_of" => p.superset_of = Some(array(v, at)?),
                "essential" => {
                    p.essential = Some(
                        v.as_bool()
                            .ok_or_else(|| perr(at, "essential must be a boolean"))?,
                    );
                }
                other => {
                    if crit.iter().any(|c| c == other) {
                        return Err(Error::PolicyCrit {
                            operator: other.to_owned(),
                        });
                    }
                    // Not critical and not understood: ignored, as the specification says.
                }
            }
        }
        p.check(at)?;
        Ok(p)
    }

    /// The combination rules of §6.1.3.1, for one policy and for a merged one.
    fn check(&self, at: &str) -> Result<(), Error> {
        if let Some(value) = &self.value {
            let as_array = value.as_array().map(Vec::as_slice);
            if let Some(add) = &self.add {
                if !as_array.is_some_and(|v| is_subset(add, v)) {
                    return Err(perr(at, "add values must be a subset of value"));
                }
            }
            if self.default.is_some() && value.is_null() {
                return Err(perr(at, "default cannot be combined with a null value"));
            }
            if let Some(one_of) = &self.one_of {
                if !contains(one_of, value) {
                    return Err(perr(at, "value must be among one_of"));
                }
            }
            if let Some(subset) = &self.subset_of {
                if !as_array.is_some_and(|v| is_subset(v, subset)) {
                    return Err(perr(at, "value must be a subset of subset_of"));
                }
            }
            if let Some(superset) = &self.superset_of {
                if !as_array.is_some_and(|v| is_subset(superset, v)) {
                    return Err(perr(at, "value must be a superset of superset_of"));
                }
            }
            if value.is_null() && self.essential == Some(true) {
                return Err(perr(at, "a null value cannot be essential"));
            }
        }
        if self.one_of.is_some()
            && (self.add.is_some() || self.subset_of.is_some() || self.superset_of.is_some())
        {
            return Err(perr(
                at,
                "one_of cannot be combined with add, subset_of or superset_of",
            ));
        }
        if let (Some(add), Some(subset)) = (&self.add, &self.subset_of) {
            if !is_subset(add, subset) {
                return Err(perr(at, "add values must be a subset of subset_of"));
            }
        }
        if let (Some(subset), Some(superset)) = (&self.subset_of, &self.superset_of) {
            if !is_subset(superset, subset) {
                return Err(perr(at, "subset_of must be a superset of superset_of"));
            }
        }
        Ok(())
    }

    /// Merges the subordinate's operators into `self` (the superiors' merged policy).
    fn merge(&mut self, sub: ParamPolicy, at: &str) -> Result<(), Error> {
        fn union(a: &mut Vec<Value>, b: Vec<Value>) {
            for v in b {
                if !contains(a, &v) {
                    a.push(v);
                }
            }
        }
        fn intersect(a: &[Value], b: &[Value]) -> Vec<Value> {
            a.iter().filter(|v| contains(b, v)).cloned().collect()
        }
        match (&self.value, sub.value) {
            (Some(a), Some(b)) if !same(a, &b) => {
                return Err(perr(at, "value operators differ"));
            }
            (None, Some(b)) => self.value = Some(b),
            _ => {}
        }
        match (&mut self.add, sub.add) {
            (Some(a), Some(b)) => union(a, b),
            (None, Some(b)) => self.add = Some(b),
            _ => {}
        }
        match (&self.default, sub.default) {
            (Some(a), Some(b)) if !same(a, &b) => {
                return Err(perr(at, "default operators differ"));
            }
            (None, Some(b)) => self.default = Some(b),
            _ => {}
        }
        match (&self.one_of, sub.one_of) {
            (Some(a), Some(b)) => {
                let i = intersect(a, &b);
                if i.is_empty() {
                    return Err(perr(at, "one_of operators have no value in common"));
                }
                self.one_of = Some(i);
            }
            (None, Some(b)) => self.one_of = Some(b),
            _ => {}
        }
        match (&self.subset_of, sub.subset_of) {
            (Some(a), Some(b)) => self.subset_of = Some(intersect(a, &b)),
            (None, Some(b)) => self.subset_of = Some(b),
            _ => {}
        }
        match (&mut self.superset_of, sub.superset_of) {
            (Some(a), Some(b)) => union(a, b),
            (None, Some(b)) => self.superset_of = Some(b),
            _ => {}
        }
        self.essential = match (self.essential, sub.essential) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        };
        self.check(at)
    }

    /// Applies the operators in the order of §6.1.3.1 to `param` (absent = `None`).
    fn apply(&self, param: Option<Value>, at: &str) -> Result<Option<Value>, Error> {
        let violation = |operator| Error::PolicyViolation {
            at: at.to_owned(),
            operator,
        };
        let mut cur = param;
        if let Some(v) = &self.value {
            cur = if v.is_null() { None } else { Some(v.clone()) };
        }
        if let Some(add) = &self.add {
            let mut arr = match cur.take() {
                None => Vec::new(),
                Some(Value::Array(a)) => a,
                Some(_) => return Err(violation("add")),
            };
            for v in add {
                if !contains(&arr, v) {
                    arr.push(v.clone());
                }
            }
            cur = Some(Value::Array(arr));
        }
        if cur.is_none() {
            cur.clone_from(&self.default);
        }
        if let (Some(one_of), Some(v)) = (&self.one_of, &cur) {
            if v.is_array() || !contains(one_of, v) {
                return Err(violation("one_of"));
            }
        }
        if let (Some(subset), Some(v)) = (&self.subset_of, &cur) {
            let Value::Array(a) = v else {
                return Err(violation("subset_of"));
            };
            cur = Some(Value::Array(
                a.iter().filter(|x| contains(subset, x)).cloned().collect(),
            ));
        }
        if let (Some(superset), Some(v)) = (&self.superset_of, &cur) {
            match v {
                Value::Array(a) if is_subset(superset, a) => {}
                _ => return Err(violation("superset_of")),
            }
        }
        if self.essential == Some(true) && cur.is_none() {
            return Err(violation("essential"));
        }
        Ok(cur)
    }
}

/// Parses and checks one `metadata_policy` claim; `crit` is every operator named in the
/// chain's `metadata_policy_crit` claims.
pub fn parse(claim: &Map<String, Value>, crit: &[String]) -> Result<Policy, Error> {
    for c in crit {
        if STANDARD.contains(&c.as_str()) {
            return Err(perr("metadata_policy_crit", "lists a standard operator"));
        }
    }
    let mut out = Policy::new();
    for (etype, params) in claim {
        let params = params
            .as_object()
            .ok_or_else(|| perr(etype, "entity type policy is not an object"))?;
        let mut m = BTreeMap::new();
        for (name, ops) in params {
            let at = format!("{etype}.{name}");
            let ops = ops
                .as_object()
                .ok_or_else(|| perr(&at, "parameter policy is not an object"))?;
            m.insert(name.clone(), ParamPolicy::parse(ops, crit, &at)?);
        }
        out.insert(etype.clone(), m);
    }
    Ok(out)
}

/// Merges `sub` (a subordinate's policy) into `acc` (the superiors' merged policy).
pub fn merge(acc: &mut Policy, sub: Policy) -> Result<(), Error> {
    for (etype, params) in sub {
        let into = acc.entry(etype.clone()).or_default();
        for (name, p) in params {
            match into.get_mut(&name) {
                Some(cur) => cur.merge(p, &format!("{etype}.{name}"))?,
                None => {
                    into.insert(name, p);
                }
            }
        }
    }
    Ok(())
}

/// Applies `policy` to `metadata` (entity type → parameters) in place. `scope`, a
/// space-separated string, is handled as the array of its values, as §6.1.3.1 asks.
pub fn apply(policy: &Policy, metadata: &mut Map<String, Value>) -> Result<(), Error> {
    for (etype, params) in policy {
        let Some(Value::Object(md)) = metadata.get_mut(etype) else {
            // A policy for an entity type the subject does not have applies to nothing.
            continue;
        };
        for (name, p) in params {
            let at = format!("{etype}.{name}");
            let is_scope = name == "scope";
            let cur = match md.remove(name) {
                Some(Value::String(s)) if is_scope => Some(Value::Array(
                    s.split(' ')
                        .filter(|x| !x.is_empty())
                        .map(|x| Value::String(x.to_owned()))
                        .collect(),
                )),
                other => other,
            };
            let out = p.apply(cur, &at)?;
            let out = match out {
                Some(Value::Array(a)) if is_scope => {
                    let words: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                    let words = words.ok_or_else(|| Error::PolicyViolation {
                        at: at.clone(),
                        operator: "scope",
                    })?;
                    Some(Value::String(words.join(" ")))
                }
                o => o,
            };
            if let Some(v) = out {
                md.insert(name.clone(), v);
            }
        }
    }
    Ok(())
}

/// The policy as a `metadata_policy` JSON object (for logs and for `varco check-config`).
#[must_use]
pub fn to_value(policy: &Policy) -> Value {
    let mut out = Map::new();
    for (etype, params) in policy {
        let mut pm = Map::new();
        for (name, p) in params {
            let mut ops = Map::new();
            let arr = |v: &Vec<Value>| Value::Array(v.clone());
            if let Some(v) = &p.value {
                ops.insert("value".into(), v.clone());
            }
            if let Some(v) = &p.add {
                ops.insert("add".into(), arr(v));
            }
            if let Some(v) = &p.default {
                ops.insert("default".into(), v.clone());
            }
            if let Some(v) = &p.one_of {
                ops.insert("one_of".into(), arr(v));
            }
            if let Some(v) = &p.subset_of {
                ops.insert("subset_of".into(), arr(v));
            }
            if let Some(v) = &p.superset_of {
                ops.insert("superset_of".into(), arr(v));
            }
            if let Some(v) = p.essential {
                ops.insert("essential".into(), Value::Bool(v));
            }
            pm.insert(name.clone(), Value::Object(ops));
        }
        out.insert(etype.clone(), Value::Object(pm));
    }
    Value::Object(out)
}
