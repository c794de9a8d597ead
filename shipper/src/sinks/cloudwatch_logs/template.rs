//! Log group and stream names from templates over event fields:
//! `/wharf/{cluster}/broker` and `broker-{broker}`. `{name}` is a
//! top-level field (dotted for nested: `{fields.cluster}`), `{kind}` and
//! `{source}` are built in; a missing field becomes `unknown`. Characters
//! CloudWatch Logs does not allow in the name become `_`.

use crate::record::Record;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(Vec<String>),
    Kind,
    Source,
}

/// Which name a template makes (their allowed characters differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `[A-Za-z0-9_\-/.#]`, at most 512.
    Group,
    /// Anything but `:` and `*`, at most 512.
    Stream,
}

/// Longest group or stream name.
pub const MAX_NAME_LEN: usize = 512;

/// A parsed name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
    kind: NameKind,
}

impl NameTemplate {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str, kind: NameKind) -> Result<NameTemplate, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| format!("`{text}` has a `{{` without its `}}`"))?;
                    let name = &rest[1..end];
                    if name.is_empty() {
                        return Err(format!("`{text}` has an empty `{{}}`"));
                    }
                    parts.push(match name {
                        "kind" => Part::Kind,
                        "source" => Part::Source,
                        f => Part::Field(f.split('.').map(str::to_owned).collect()),
                    });
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Lit(rest[..i].to_owned()));
                    rest = &rest[i..];
                }
                None => {
                    parts.push(Part::Lit(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(NameTemplate { parts, kind })
    }

    /// Whether it reads event fields.
    pub fn has_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// The name for `record`, whose parsed object is `event` (when the
    /// template reads fields).
    pub fn render(&self, record: &Record, event: Option<&serde_json::Value>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Kind => out.push_str(record.kind.as_str()),
                Part::Source => out.push_str(&record.source),
                Part::Field(path) => {
                    let mut v = event;
                    for k in path {
                        v = v.and_then(|v| v.get(k));
                    }
                    match v {
                        Some(serde_json::Value::String(s)) => out.push_str(s),
                        Some(serde_json::Value::Null) | None => out.push_str("unknown"),
                        Some(other) => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        let clean: String = out
            .chars()
            .map(|c| match self.kind {
                NameKind::Group if !(c.is_ascii_alphanumeric() || "_-/.#".contains(c)) => '_',
                NameKind::Stream if c == ':' || c == '*' => '_',
                _ => c,
            })
            .collect();
        let mut end = clean.len().min(MAX_NAME_LEN);
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean[..end].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn names_from_fields_with_forbidden_characters_replaced() {
        let r = Record {
            seq: 1,
            id: uuid::Uuid::now_v7(),
            kind: crate::record::Kind::Log,
            ts_millis: 0,
            source: Arc::from("broker"),
            line: br#"{"cluster":"prod east","broker":3,"f":{"z":"a:b"}}"#.to_vec(),
        };
        let v: serde_json::Value = serde_json::from_slice(&r.line).unwrap();
        let g = NameTemplate::parse("/wharf/{cluster}/{kind}", NameKind::Group).unwrap();
        assert_eq!(g.render(&r, Some(&v)), "/wharf/prod_east/log");
        let s = NameTemplate::parse("broker-{broker}-{f.z}-{missing}", NameKind::Stream).unwrap();
        assert_eq!(s.render(&r, Some(&v)), "broker-3-a_b-unknown");
        assert!(NameTemplate::parse("x{y", NameKind::Group).is_err());
        assert!(NameTemplate::parse("", NameKind::Group).is_err());
    }
}
