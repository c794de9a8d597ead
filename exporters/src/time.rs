//! RFC 3339 timestamps without a calendar dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch for `t` (0 for times before it).
pub(crate) fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-25T01:36:50.123Z`.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let ms = epoch_millis(t);
    let secs = ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms % 1000
    )
}

/// `t` as RFC 3339 UTC in whole seconds, as CloudTrail writes `eventTime`.
pub(crate) fn rfc3339_seconds(t: SystemTime) -> String {
    let s = rfc3339_millis(t);
    format!("{}Z", &s[..19])
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.007Z, a leap day.
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_007);
        assert_eq!(rfc3339_millis(t), "2024-02-29T23:59:59.007Z");
        assert_eq!(rfc3339_seconds(t), "2024-02-29T23:59:59Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_800); // 2100-01-01
        assert_eq!(rfc3339_millis(t), "2100-01-01T00:00:00.000Z");
    }
}
