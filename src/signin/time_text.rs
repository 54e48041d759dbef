//! How times read where people see them: RFC 3339 in JSON and the CLI,
//! "14:05 UTC" and "10 minutes" in pages and mail. Formatting only; what
//! time it is comes from the caller.

use std::time::{Duration, UNIX_EPOCH};

pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// "14:05 UTC" for an email.
pub fn clock_time(ms: u64) -> String {
    let full = rfc3339(ms);
    full.get(11..16)
        .map(|hm| format!("{hm} UTC"))
        .unwrap_or(full)
}

/// "2026-12-02 14:05 UTC" for pages and mail that name a day.
pub fn date_time(ms: u64) -> String {
    let full = rfc3339(ms);
    match (full.get(..10), full.get(11..16)) {
        (Some(day), Some(hm)) => format!("{day} {hm} UTC"),
        _ => full,
    }
}

/// "10 minutes", "1 hour", "90 seconds".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(3600) && secs >= 3600 {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) && secs >= 60 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(clock_time(0), "00:00 UTC");
    }
}
