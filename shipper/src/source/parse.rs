//! Checking one NDJSON line of the wire format (docs/socket-format.md).

use serde::Deserialize;

use crate::record::Kind;

/// Why a line was refused. `Display` is the text sent back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not valid JSON.
    NotJson(String),
    /// Valid JSON, but not an object.
    NotObject,
    /// No `kind` field.
    MissingKind,
    /// `kind` is not log, metric or audit.
    BadKind(String),
    /// `ts` is neither RFC 3339 nor epoch milliseconds.
    BadTs(String),
    /// Longer than the configured maximum.
    TooLong {
        /// The configured maximum in bytes.
        max: usize,
    },
}

impl LineError {
    /// A short label for metrics (`reason="..."`).
    pub fn reason(&self) -> &'static str {
        match self {
            LineError::NotJson(_) => "not_json",
            LineError::NotObject => "not_object",
            LineError::MissingKind => "missing_kind",
            LineError::BadKind(_) => "bad_kind",
            LineError::BadTs(_) => "bad_ts",
            LineError::TooLong { .. } => "too_long",
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::NotJson(e) => write!(f, "not valid JSON: {e}"),
            LineError::NotObject => f.write_str("not a JSON object"),
            LineError::MissingKind => {
                f.write_str("no \"kind\" field; set it to \"log\", \"metric\" or \"audit\"")
            }
            LineError::BadKind(k) => write!(
                f,
                "\"kind\" is {k}; it must be \"log\", \"metric\" or \"audit\""
            ),
            LineError::BadTs(t) => write!(
                f,
                "\"ts\" is {t}; it must be an RFC 3339 string or epoch milliseconds"
            ),
            LineError::TooLong { max } => {
                write!(f, "line longer than the maximum of {max} bytes")
            }
        }
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    kind: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    ts: Option<Scalar<'a>>,
}

/// A JSON value read without buffering: the hot path only needs `kind`
/// and `ts`, and everything else is skipped in place.
enum Scalar<'a> {
    Str(std::borrow::Cow<'a, str>),
    Int(i64),
    Float(f64),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Str(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar<'a>, E> {
                Ok(i64::try_from(v).map_or(Scalar::Other("a number out of range"), Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other("a boolean"))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other("null"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Scalar<'a>, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Scalar<'a>, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar::Other("an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// What a good line yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The event's kind.
    pub kind: Kind,
    /// Event time in epoch milliseconds, if the line has `ts`.
    pub ts_millis: Option<i64>,
}

/// Checks a line (trimmed, without its newline) and extracts its kind and time.
pub fn parse_line(line: &[u8]) -> Result<Parsed, LineError> {
    if line.first() != Some(&b'{') {
        // Valid JSON of the wrong shape (an array, a number...) or not JSON.
        return match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) => Err(LineError::NotObject),
            Err(e) => Err(LineError::NotJson(e.to_string())),
        };
    }
    let head: Head<'_> =
        serde_json::from_slice(line).map_err(|e| LineError::NotJson(e.to_string()))?;
    let kind = match head.kind {
        None | Some(Scalar::Other("null")) => return Err(LineError::MissingKind),
        Some(Scalar::Str(s)) => {
            Kind::from_name(&s).ok_or_else(|| LineError::BadKind(format!("\"{s}\"")))?
        }
        Some(Scalar::Int(n)) => return Err(LineError::BadKind(n.to_string())),
        Some(Scalar::Float(n)) => return Err(LineError::BadKind(n.to_string())),
        Some(Scalar::Other(what)) => return Err(LineError::BadKind(what.into())),
    };
    let ts_millis = match head.ts {
        None => None,
        Some(Scalar::Int(ms)) => Some(ms),
        Some(Scalar::Float(ms)) if ms.is_finite() => Some(ms as i64),
        Some(Scalar::Float(ms)) => return Err(LineError::BadTs(ms.to_string())),
        Some(Scalar::Str(s)) => Some(
            chrono::DateTime::parse_from_rfc3339(&s)
                .map_err(|_| LineError::BadTs(format!("\"{s}\"")))?
                .timestamp_millis(),
        ),
        Some(Scalar::Other(what)) => return Err(LineError::BadTs(what.into())),
    };
    Ok(Parsed { kind, ts_millis })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_lines() {
        let p =
            parse_line(br#"{"kind":"log","ts":"2026-01-02T03:04:05.678Z","message":"x"}"#).unwrap();
        assert_eq!(p.kind, Kind::Log);
        assert_eq!(p.ts_millis, Some(1_767_323_045_678));
        let p =
            parse_line(br#"{"ts":1700000000000,"kind":"metric","name":"m","value":1}"#).unwrap();
        assert_eq!(
            (p.kind, p.ts_millis),
            (Kind::Metric, Some(1_700_000_000_000))
        );
        assert_eq!(parse_line(br#"{"kind":"audit"}"#).unwrap().ts_millis, None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(matches!(
            parse_line(b"{not json"),
            Err(LineError::NotJson(_))
        ));
        assert_eq!(parse_line(b"[1,2]"), Err(LineError::NotObject));
        assert_eq!(parse_line(b"42"), Err(LineError::NotObject));
        assert_eq!(
            parse_line(br#"{"message":"x"}"#),
            Err(LineError::MissingKind)
        );
        let e = parse_line(br#"{"kind":"trace"}"#).unwrap_err();
        assert_eq!(e.reason(), "bad_kind");
        assert!(e.to_string().contains("\"trace\""));
        let e = parse_line(br#"{"kind":"log","ts":"yesterday"}"#).unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
        assert_eq!(
            parse_line(br#"{"kind":"log","ts":true}"#)
                .unwrap_err()
                .reason(),
            "bad_ts"
        );
    }
}
