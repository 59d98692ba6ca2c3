//! The strict JSON reader: serde_json's parser with our own value builder, which refuses a
//! member name seen twice in one object and nesting deeper than a limit.
//!
//! serde_json's own `Value` keeps the last of two duplicate members, so `{"alg":"RS256",
//! "alg":"none"}` would mean different things to different libraries; here it means nothing.
//! The builder is a `DeserializeSeed`, so there is still only one JSON tokenizer.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::Error;

/// Parses `bytes` as one JSON value, nested at most `max_depth` levels (an object or array
/// at the top is level 1). Work is linear in the input.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, Error> {
    let why = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Seed {
        depth: 0,
        max: max_depth,
        why: &why,
    };
    let value = seed.deserialize(&mut de);
    let value = match value {
        Ok(v) => de.end().map(|()| v),
        Err(e) => Err(e),
    };
    value.map_err(|_| {
        why.take().unwrap_or(Error::Json {
            context: "JSON text",
        })
    })
}

/// Parses `bytes` as a JSON object (see [`parse`]).
pub fn parse_object(
    bytes: &[u8],
    max_depth: usize,
    context: &'static str,
) -> Result<Map<String, Value>, Error> {
    match parse(bytes, max_depth) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Json { context }),
        Err(Error::Json { .. }) => Err(Error::Json { context }),
        Err(e) => Err(e),
    }
}

#[derive(Clone, Copy)]
struct Seed<'a> {
    depth: usize,
    max: usize,
    why: &'a Cell<Option<Error>>,
}

impl Seed<'_> {
    fn deeper<E: de::Error>(&self) -> Result<Seed<'_>, E> {
        if self.depth >= self.max {
            self.why.set(Some(Error::JsonDepth));
            return Err(E::custom("too deep"));
        }
        Ok(Seed {
            depth: self.depth + 1,
            max: self.max,
            why: self.why,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(inner)?;
            if out.insert(key, value).is_some() {
                self.why.set(Some(Error::JsonDuplicateKey));
                return Err(de::Error::custom("duplicate member"));
            }
        }
        Ok(Value::Object(out))
    }
}
