//! Structured log lines on stderr: one JSON object per event, with a timestamp. Values are
//! escaped by serde_json, so attacker-controlled text cannot forge lines.

use crate::clock;

/// Writes one event.
pub fn event(name: &str, fields: &[(&str, &str)]) {
    let mut map = serde_json::Map::new();
    map.insert("ts".into(), clock::unix(clock::system()).into());
    map.insert("event".into(), name.into());
    for (k, v) in fields {
        map.insert((*k).into(), (*v).into());
    }
    eprintln!("{}", serde_json::Value::Object(map));
}
