//! UTC timestamps for the console log (`2026-11-27T12:00:00.123456Z`), computed from `SystemTime`
//! with the civil-from-days algorithm so no date library is needed.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as an RFC 3339 UTC timestamp with microseconds.
pub fn utc_micros(t: SystemTime) -> String {
    let mut out = String::with_capacity(27);
    push_utc_micros(t, &mut out);
    out
}

/// Appends `t` as an RFC 3339 UTC timestamp with microseconds (times before 1970 print as 1970).
pub fn push_utc_micros(t: SystemTime, out: &mut String) {
    use std::fmt::Write;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let micros = d.subsec_micros();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
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
    fn known_instants() {
        assert_eq!(utc_micros(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (leap day) 12:34:56.789012
        let t = UNIX_EPOCH + Duration::new(951_827_696, 789_012_000);
        assert_eq!(utc_micros(t), "2000-02-29T12:34:56.789012Z");
        // 2026-11-27T12:00:00.123456Z
        let t = UNIX_EPOCH + Duration::new(1_795_780_800, 123_456_000);
        assert_eq!(utc_micros(t), "2026-11-27T12:00:00.123456Z");
        // 2100-03-01 (2100 is not a leap year)
        let t = UNIX_EPOCH + Duration::from_secs(4_107_542_400);
        assert_eq!(utc_micros(t), "2100-03-01T00:00:00.000000Z");
    }
}
