//! Object key templates with Hive partitions.
//!
//! `logs/cluster={cluster}/broker={broker}/dt=%Y-%m-%d/hour=%H/{uuid}.{ext}`:
//! `{name}` is an event field (dotted for nested: `{fields.cluster}`),
//! `%` sequences are strftime over the event time (UTC), and these are
//! built in: `{uuid}` (a UUIDv7 per object, required so objects never
//! overwrite each other), `{ext}` (from the compression), `{kind}`,
//! `{source}`. A missing field becomes `__HIVE_DEFAULT_PARTITION__`, as
//! Hive writes it; characters outside `[A-Za-z0-9._=-]` become `_`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::record::Record;

/// Value of a partition field that the event does not have.
pub const MISSING: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Time(String),
    Field(Vec<String>),
    Uuid,
    Ext,
    Kind,
    Source,
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
    /// Top-level fields the template reads (first names of the paths).
    wanted: Vec<String>,
    /// The time parts rendered for the last second seen.
    time_cache: Option<(i64, Vec<String>)>,
}

impl KeyTemplate {
    /// Parses a template; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut uuids = 0;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("`{text}` has a `{{` without its `}}`"))?;
                    let name = &rest[1..end];
                    parts.push(match name {
                        "uuid" => {
                            uuids += 1;
                            Part::Uuid
                        }
                        "ext" => Part::Ext,
                        "kind" => Part::Kind,
                        "source" => Part::Source,
                        _ => {
                            if name.is_empty()
                                || !name.split('.').all(|p| {
                                    !p.is_empty()
                                        && p.chars().all(|c| {
                                            c.is_ascii_alphanumeric() || c == '_' || c == '-'
                                        })
                                })
                            {
                                return Err(format!("`{{{name}}}` is not a field name"));
                            }
                            Part::Field(name.split('.').map(str::to_owned).collect())
                        }
                    });
                    rest = &rest[end + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let lit = &rest[..end];
                    if lit.contains('}') {
                        return Err(format!("`{text}` has a `}}` without its `{{`"));
                    }
                    if lit.contains('%') {
                        if StrftimeItems::new(lit).any(|i| matches!(i, Item::Error)) {
                            return Err(format!("`{lit}` holds an unknown `%` time format"));
                        }
                        parts.push(Part::Time(lit.to_owned()));
                    } else {
                        parts.push(Part::Lit(lit.to_owned()));
                    }
                    rest = &rest[end..];
                }
            }
        }
        if uuids != 1 {
            return Err(format!(
                "`{text}` must contain {{uuid}} exactly once, so objects never overwrite each other"
            ));
        }
        if text.starts_with('/') {
            return Err(format!("`{text}` must not start with `/`"));
        }
        let mut wanted: Vec<String> = Vec::new();
        for p in &parts {
            if let Part::Field(path) = p {
                if !wanted.contains(&path[0]) {
                    wanted.push(path[0].clone());
                }
            }
        }
        Ok(KeyTemplate {
            parts,
            wanted,
            time_cache: None,
        })
    }

    /// The key with everything but `{uuid}` filled in from `record`:
    /// records with the same partition go to the same object.
    pub fn partition(&mut self, record: &Record, ext: &str) -> String {
        let fields = if self.wanted.is_empty() {
            Vec::new()
        } else {
            pick_fields(&record.line, &self.wanted)
        };
        let second = record.ts_millis.div_euclid(1000);
        if self.time_cache.as_ref().map(|(s, _)| *s) != Some(second) {
            let time = DateTime::<Utc>::from_timestamp(second, 0).unwrap_or_default();
            let rendered = self
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::Time(f) => Some(time.format(f).to_string()),
                    _ => None,
                })
                .collect();
            self.time_cache = Some((second, rendered));
        }
        let times = &self.time_cache.as_ref().expect("filled above").1;
        let mut next_time = 0;
        let mut out = String::with_capacity(96);
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Time(_) => {
                    out.push_str(&times[next_time]);
                    next_time += 1;
                }
                Part::Uuid => out.push_str("{uuid}"),
                Part::Ext => out.push_str(ext),
                Part::Kind => out.push_str(record.kind.as_str()),
                Part::Source => push_clean(&mut out, &record.source),
                Part::Field(path) => {
                    let raw = self
                        .wanted
                        .iter()
                        .position(|w| *w == path[0])
                        .and_then(|i| fields.get(i).copied().flatten());
                    match raw.and_then(|r| lookup(r, &path[1..])) {
                        Some(v) => push_clean(&mut out, &v),
                        None => out.push_str(MISSING),
                    }
                }
            }
        }
        out
    }

    /// The final key of an object of `partition`.
    pub fn key(partition: &str, uuid: &uuid::Uuid) -> String {
        partition.replacen("{uuid}", &uuid.to_string(), 1)
    }
}

/// The raw values of the `wanted` top-level fields of a JSON object,
/// skipping everything else in place (no map is built).
fn pick_fields<'a>(line: &'a [u8], wanted: &[String]) -> Vec<Option<&'a RawValue>> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct V<'w>(&'w [String]);
    impl<'de, 'w> Visitor<'de> for V<'w> {
        type Value = Vec<Option<&'de RawValue>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = vec![None; self.0.len()];
            while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                match self.0.iter().position(|w| **w == *k) {
                    Some(i) => out[i] = Some(m.next_value::<&'de RawValue>()?),
                    None => {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    (&mut de)
        .deserialize_map(V(wanted))
        .unwrap_or_else(|_| vec![None; wanted.len()])
}

fn lookup(raw: &RawValue, rest: &[String]) -> Option<String> {
    let mut raw: &RawValue = raw;
    for name in rest {
        let inner: BTreeMap<Cow<'_, str>, &RawValue> = serde_json::from_str(raw.get()).ok()?;
        raw = inner.get(name.as_str())?;
    }
    let text = raw.get().trim();
    if text == "null" {
        return None;
    }
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else {
        Some(text.to_owned())
    }
}

fn push_clean(out: &mut String, value: &str) {
    if value.is_empty() || value == "." || value == ".." {
        out.push_str(MISSING);
        return;
    }
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=') {
            out.push(c);
        } else {
            out.push('_');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;
    use std::sync::Arc;

    fn rec(line: &str, ts: i64) -> Record {
        Record {
            seq: 0,
            id: uuid::Uuid::now_v7(),
            kind: Kind::Log,
            ts_millis: ts,
            source: Arc::from("broker"),
            line: line.as_bytes().to_vec(),
        }
    }

    #[test]
    fn hive_partitions_from_fields_and_event_time() {
        let mut t = KeyTemplate::parse(
            "logs/cluster={cluster}/broker={broker}/dt=%Y-%m-%d/hour=%H/{uuid}.{ext}",
        )
        .unwrap();
        // 2026-01-02T03:04:05Z
        let r = rec(
            r#"{"kind":"log","cluster":"prod-1","broker":3}"#,
            1_767_323_045_000,
        );
        let p = t.partition(&r, "ndjson.gz");
        assert_eq!(
            p,
            "logs/cluster=prod-1/broker=3/dt=2026-01-02/hour=03/{uuid}.ndjson.gz"
        );
        let id = uuid::Uuid::nil();
        assert_eq!(
            KeyTemplate::key(&p, &id),
            format!("logs/cluster=prod-1/broker=3/dt=2026-01-02/hour=03/{id}.ndjson.gz")
        );
    }

    #[test]
    fn missing_nested_and_unsafe_values() {
        let mut t =
            KeyTemplate::parse("{kind}/c={fields.cluster}/b={broker}/{source}/{uuid}").unwrap();
        let r = rec(r#"{"fields":{"cluster":"a/b c"},"broker":null}"#, 0);
        assert_eq!(
            t.partition(&r, "x"),
            format!("log/c=a_b_c/b={MISSING}/broker/{{uuid}}")
        );
        let r = rec(r#"{"broker":".."}"#, 0);
        assert!(t
            .partition(&r, "x")
            .contains(&format!("c={MISSING}/b={MISSING}")));
    }

    #[test]
    fn bad_templates_are_refused_with_a_reason() {
        assert!(KeyTemplate::parse("logs/{cluster}.gz")
            .unwrap_err()
            .contains("{uuid}"));
        assert!(KeyTemplate::parse("{uuid}/{uuid}")
            .unwrap_err()
            .contains("exactly once"));
        assert!(KeyTemplate::parse("logs/{cluster/{uuid}").is_err());
        assert!(KeyTemplate::parse("logs/}/{uuid}")
            .unwrap_err()
            .contains("`}`"));
        assert!(KeyTemplate::parse("dt=%Q/{uuid}")
            .unwrap_err()
            .contains("%"));
        assert!(KeyTemplate::parse("/abs/{uuid}").is_err());
        assert!(KeyTemplate::parse("{a b}/{uuid}")
            .unwrap_err()
            .contains("field name"));
    }
}
