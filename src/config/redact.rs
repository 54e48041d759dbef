//! URLs made fit to print: the one `redact_url`, used wherever a URL from the
//! config file reaches a message, a log line or `latchkey check` (the Redis
//! URLs, `mail.smtp_url`). Deciding what to print is the caller's.

/// `raw` with any password replaced by `***`.
///
/// A URL that parses is printed as `url` spells it (`redis://:***@h:6379/0`).
/// One that does not (and those are the ones error messages quote) is cut
/// by hand: everything between `://` and the last `@` is taken as user
/// information, so a password holding `/` or `@` does not leak either
/// (`smtp://u:pa/ss@host` is `smtp://u:***@host`).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() && u.set_password(Some("***")).is_ok() {
                u.to_string()
            } else {
                raw.to_owned()
            }
        }
        Err(_) => redact_by_hand(raw),
    }
}

fn redact_by_hand(raw: &str) -> String {
    let (Some(scheme_end), Some(at)) = (raw.find("://"), raw.rfind('@')) else {
        return raw.to_owned();
    };
    let userinfo_start = scheme_end + 3;
    if at < userinfo_start {
        return raw.to_owned();
    }
    match raw[userinfo_start..at].find(':') {
        Some(colon) => format!("{}:***{}", &raw[..userinfo_start + colon], &raw[at..]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let cases = [
            (
                "smtps://user:secret@smtp.example.com:465",
                "smtps://user:***@smtp.example.com:465",
            ),
            ("smtp://host:25", "smtp://host:25"),
            ("smtp://user@host", "smtp://user@host"),
            ("smtpx://user:hunter2@host", "smtpx://user:***@host"),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            (
                "rediss://u:p@r.example:6380",
                "rediss://u:***@r.example:6380",
            ),
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            // Not URLs: cut by hand.
            ("smtp://u:p@ss@[bad", "smtp://u:***@[bad"),
            ("smtp://u:pa/ss@host", "smtp://u:***@host"),
            ("redis://u:p w@host", "redis://u:***@host"),
            ("no url at all", "no url at all"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want, "{raw}");
        }
    }
}
