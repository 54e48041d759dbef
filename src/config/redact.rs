//! URLs made fit to print: the one `redact_url`, used wherever a URL from the
//! config file reaches a message, a log line or `latchkey check` (the Redis
//! URLs, `mail.smtp_url`). Deciding what to print is the caller's.

/// `raw` with any password replaced by `***`, and otherwise as written.
///
/// A URL that parses has its password found where `url` finds it (the user
/// information ends at the last `@` before the path, query or fragment).
/// One that does not parse (and those are the ones error messages quote) is
/// cut more widely: everything between `://` and the last `@` is taken as
/// user information, so a password holding `/` or `@` does not leak either
/// (`smtp://u:pa/ss@host` is `smtp://u:***@host`).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) if u.password().is_none() => raw.to_owned(),
        Ok(mut u) => {
            let hidden = hide_password(raw, |rest| rest.find(['/', '?', '#']));
            if hidden != raw {
                return hidden;
            }
            // Spelled in a way the cut above does not see: print it as
            // `url` does rather than risk the password.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Err(_) => hide_password(raw, |_| None),
    }
}

/// `raw` with the password of its user information replaced; the user
/// information is what comes between `://` and the last `@` before
/// `authority_end` (given what follows `://`; `None`: the end).
fn hide_password(raw: &str, authority_end: impl Fn(&str) -> Option<usize>) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let start = scheme_end + 3;
    let rest = &raw[start..];
    let authority = &rest[..authority_end(rest).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return raw.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!("{}:***{}", &raw[..start + colon], &raw[start + at..]),
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
            // As written: no trailing slash added, the query kept.
            (
                "http://user:pw@mail.example.com",
                "http://user:***@mail.example.com",
            ),
            (
                "smtp://user:pw@mail.example.com?tls=sometimes",
                "smtp://user:***@mail.example.com?tls=sometimes",
            ),
            ("redis://h:6379/0?user=a@b", "redis://h:6379/0?user=a@b"),
            ("redis://u:p@h/0?x=a@b", "redis://u:***@h/0?x=a@b"),
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
