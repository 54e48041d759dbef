//! Request-target normalization: the one path that the rules judge and that is
//! forwarded upstream, and the normalized host a request is judged under.
//!
//! `normalize_path` decodes percent-escapes of unreserved characters only
//! (`A-Z a-z 0-9 - . _ ~`), rewrites every other escape with upper-case hex,
//! percent-encodes raw bytes that are not allowed in a path (non-ASCII, space,
//! `"`, `<`, `>`, `[`, `]`, `{`, `}`, `|`, `^`, `` ` ``, `?`) so the result is
//! pure ASCII, removes dot segments (RFC 3986 §5.2.4, also when they were
//! encoded), collapses repeated slashes and keeps a trailing slash. It refuses
//! what different servers would read differently: encoded `/` or `\`, a raw
//! `\`, NUL and other control characters (raw or encoded), malformed escapes,
//! a `..` that climbs above the root, `.`/`..` carrying path parameters
//! (`/..;/`: Tomcat-like servers treat it as `..`), a `..` right after an
//! empty segment (`/a//../b`: `/a/b` to servers that merge slashes first,
//! `/a/b` minus nothing to those that do not), a raw `#` (never part of a
//! request path; some servers cut the path there), double encoding (`%25`
//! followed by two hex digits: `%252e` is `.` to a server that decodes
//! twice), overlong UTF-8 (`%C0%AE` is `.` to old decoders) and the
//! characters that Unicode compatibility normalization (NFKC) turns into
//! `.`, `..`, `/` or `\` (fullwidth `．` `／` `＼`, `․`, `‥`, `﹒`, `﹨`).
//! Other look-alike letters (`ａdmin`) are forwarded as they are: the rules
//! compare bytes, and an upstream that folds Unicode must be given rules for
//! what it folds to. A segment made only of dots and spaces other than `.`
//! and `..` (`...`, `..%20`) is refused: Windows servers drop trailing dots
//! and spaces and would read it as `..`. Splitting query from path and normalizing the Host
//! header live here too; matching normalized paths against rules is
//! `rules`' job.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a request path is refused (the gate answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with \"/\"")]
    NotAbsolute,
    #[error("the path contains an encoded slash (%2F)")]
    EncodedSlash,
    #[error("the path contains an encoded backslash (%5C)")]
    EncodedBackslash,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("the path contains a control character")]
    ControlChar,
    #[error("the path contains a malformed percent-escape")]
    BadPercentEncoding,
    #[error("the path climbs above the root with \"..\"")]
    ClimbsAboveRoot,
    #[error("the path has a \".\" or \"..\" segment with parameters (\";\")")]
    DotSegmentWithParams,
    #[error("the path has a segment made only of dots and spaces (\"...\", \".. \")")]
    DotsAndSpacesSegment,
    #[error("the path has \"..\" right after an empty segment (\"//..\")")]
    DotDotAfterEmptySegment,
    #[error("the path contains a raw \"#\"")]
    Fragment,
    #[error("the path is percent-encoded twice (%25 followed by an escape)")]
    DoubleEncoded,
    #[error("the path contains overlong UTF-8")]
    OverlongUtf8,
    #[error("the path contains a look-alike of \".\", \"/\" or \"\\\"")]
    LookalikeSeparator,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes allowed raw in a path segment besides unreserved (RFC 3986 pchar):
/// sub-delims, `:` and `@`.
fn is_raw_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What a raw byte means in a path, refusals first.
fn check_raw(b: u8) -> Result<(), PathError> {
    match b {
        0 => Err(PathError::Nul),
        b'\\' => Err(PathError::Backslash),
        b'#' => Err(PathError::Fragment),
        b if b < 0x20 || b == 0x7f => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

/// What a decoded escape means in a path, refusals first.
fn check_decoded(v: u8) -> Result<(), PathError> {
    match v {
        0 => Err(PathError::Nul),
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::EncodedBackslash),
        v if v < 0x20 || v == 0x7f => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

/// Decodes the escape at `bytes[i]` (which is `%`).
fn decode_escape(bytes: &[u8], i: usize) -> Result<u8, PathError> {
    match (bytes.get(i + 1), bytes.get(i + 2)) {
        (Some(&h), Some(&l)) => match (hex_value(h), hex_value(l)) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(PathError::BadPercentEncoding),
        },
        _ => Err(PathError::BadPercentEncoding),
    }
}

/// A segment (already decoded) that must not stand: `.`/`..` with
/// parameters, also when the `;` is encoded (`..%3B`: a server that decodes
/// before it cuts parameters reads `..`).
fn is_dot_with_params(seg: &[u8]) -> bool {
    let dots = seg.iter().take_while(|&&b| b == b'.').count();
    let rest = &seg[dots..];
    (dots == 1 || dots == 2)
        && (rest.starts_with(b";")
            || rest
                .get(..3)
                .is_some_and(|e| e.eq_ignore_ascii_case(b"%3B")))
}

/// A segment whose name (before any `;`/`%3B` parameters) is only dots and
/// spaces, other than a plain `.` or `..`: Windows servers drop trailing
/// dots and spaces, so `...` and `..%20` would read as `..` there.
fn is_dots_and_spaces(seg: &[u8]) -> bool {
    if seg == b"." || seg == b".." {
        return false;
    }
    let mut i = 0;
    while i < seg.len() {
        match seg[i] {
            b'.' | b' ' => i += 1,
            b'%' if seg.get(i + 1..i + 3) == Some(b"20") => i += 3,
            b';' => break,
            b'%' if seg
                .get(i + 1..i + 3)
                .is_some_and(|e| e.eq_ignore_ascii_case(b"3B")) =>
            {
                break
            }
            _ => return false,
        }
    }
    i > 0
}

/// True when `bytes` is already exactly what `normalize_path` would return.
/// Errors are left to the slow path, which reports them.
fn is_normal(bytes: &[u8]) -> bool {
    let mut seg_start = 1;
    let mut i = 1;
    while i <= bytes.len() {
        let b = bytes.get(i).copied();
        if b.is_none() || b == Some(b'/') {
            let seg = &bytes[seg_start..i];
            // Empty segments are fine only as the very last one (trailing slash).
            if (seg.is_empty() && b.is_some())
                || seg == b"."
                || seg == b".."
                || is_dot_with_params(seg)
                || is_dots_and_spaces(seg)
            {
                return false;
            }
            seg_start = i + 1;
            i += 1;
            continue;
        }
        let b = bytes[i];
        if b == b'%' {
            match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l))
                    if (h.is_ascii_digit() || (b'A'..=b'F').contains(&h))
                        && (l.is_ascii_digit() || (b'A'..=b'F').contains(&l)) =>
                {
                    let v = decode_escape(bytes, i).unwrap_or(b'/');
                    if is_unreserved(v) || v == b'%' || check_decoded(v).is_err() {
                        return false;
                    }
                }
                _ => return false,
            }
            i += 3;
        } else if is_raw_pchar(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// `raw` is the path of a request target WITHOUT the query. Returns the one
/// normalized path that the rules judge AND that is forwarded upstream.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let out = if is_normal(bytes) {
        raw.to_owned()
    } else {
        normalize_slow(bytes)?
    };
    check_encoded_bytes(&out)?;
    Ok(out)
}

/// Percent-decoded byte sequences that some decoder reads as `.`, `/` or
/// `\\`: UTF-8 characters NFKC maps to them, and overlong UTF-8 forms.
const LOOKALIKES: &[&[u8]] = &[
    &[0xEF, 0xBC, 0x8E], // U+FF0E FULLWIDTH FULL STOP
    &[0xEF, 0xBC, 0x8F], // U+FF0F FULLWIDTH SOLIDUS
    &[0xEF, 0xBC, 0xBC], // U+FF3C FULLWIDTH REVERSE SOLIDUS
    &[0xEF, 0xB9, 0x92], // U+FE52 SMALL FULL STOP
    &[0xEF, 0xB9, 0xA8], // U+FE68 SMALL REVERSE SOLIDUS
    &[0xE2, 0x80, 0xA4], // U+2024 ONE DOT LEADER
    &[0xE2, 0x80, 0xA5], // U+2025 TWO DOT LEADER
];

/// Refuses overlong UTF-8 and NFKC look-alikes of separators in a
/// normalized path (where every non-ASCII byte is a `%XX` escape).
fn check_encoded_bytes(out: &str) -> Result<(), PathError> {
    if !out.contains('%') {
        return Ok(());
    }
    let bytes = out.as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Ok(v) = decode_escape(bytes, i) {
                // `%25` then two hex digits: an escape once decoded again
                // (also when the digits were themselves decoded: `%25%32%65`).
                let hex_follows = bytes.get(i + 3).copied().and_then(hex_value).is_some()
                    && bytes.get(i + 4).copied().and_then(hex_value).is_some();
                if v == b'%' && hex_follows {
                    return Err(PathError::DoubleEncoded);
                }
                decoded.push(v);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    for (j, pair) in decoded.windows(2).enumerate() {
        let overlong = matches!(
            (pair[0], pair[1]),
            (0xC0 | 0xC1, 0x80..=0xBF) | (0xE0, 0x80..=0x9F) | (0xF0, 0x80..=0x8F)
        );
        if overlong {
            return Err(PathError::OverlongUtf8);
        }
        if LOOKALIKES.iter().any(|l| decoded[j..].starts_with(l)) {
            return Err(PathError::LookalikeSeparator);
        }
    }
    Ok(())
}

fn normalize_slow(bytes: &[u8]) -> Result<String, PathError> {
    // Invariant: `out` ends with '/' whenever a new segment starts.
    let mut out = String::with_capacity(bytes.len() + 8);
    out.push('/');
    let mut i = 1;
    let mut prev_empty = false;
    loop {
        let seg_start = out.len();
        // Decode one segment into `out`.
        while let Some(&b) = bytes.get(i) {
            if b == b'/' {
                break;
            }
            if b == b'%' {
                let v = decode_escape(bytes, i)?;
                check_decoded(v)?;
                if is_unreserved(v) {
                    out.push(char::from(v));
                } else {
                    push_escape(&mut out, v);
                }
                i += 3;
            } else {
                check_raw(b)?;
                if is_raw_pchar(b) {
                    out.push(char::from(b));
                } else {
                    push_escape(&mut out, b);
                }
                i += 1;
            }
        }
        let last = i >= bytes.len();
        let seg = &out.as_bytes()[seg_start..];
        let empty = seg.is_empty();
        if seg == b"." || seg.is_empty() {
            out.truncate(seg_start);
        } else if seg == b".." {
            if prev_empty {
                return Err(PathError::DotDotAfterEmptySegment);
            }
            out.truncate(seg_start);
            if out.len() == 1 {
                return Err(PathError::ClimbsAboveRoot);
            }
            out.pop();
            let cut = out.rfind('/').map_or(1, |p| p + 1);
            out.truncate(cut);
        } else if is_dot_with_params(seg) {
            return Err(PathError::DotSegmentWithParams);
        } else if is_dots_and_spaces(seg) {
            return Err(PathError::DotsAndSpacesSegment);
        } else if !last {
            out.push('/');
        }
        if last {
            return Ok(out);
        }
        prev_empty = empty;
        i += 1; // skip the '/'
    }
}

fn push_escape(out: &mut String, v: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(v >> 4)]));
    out.push(char::from(HEX[usize::from(v & 15)]));
}

/// Splits a Host header or URL authority into host and port (without `:`),
/// checking only the shape of the port. `None` if the shape is wrong.
pub(crate) fn split_host_port(raw: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if raw.starts_with('[') {
        let end = raw.find(']')?;
        let rest = &raw[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return None,
        };
        (&raw[..=end], port)
    } else {
        match raw.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        }
    };
    if let Some(p) = port {
        if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !p.is_empty() && p.parse::<u16>().is_err() {
            return None;
        }
    }
    Some((host, port))
}

/// Host header / authority → lower-case host without port and without a
/// trailing dot; `None` if not a valid host. IPv6 literals keep their brackets
/// and come back in canonical form (`[::1]`). IPv4 literals must be four
/// decimal parts; other all-numeric names are refused as ambiguous.
pub fn normalize_host(raw: &str) -> Option<String> {
    let (host, _port) = split_host_port(raw)?;
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        let addr: Ipv6Addr = inner.parse().ok()?;
        return Some(format!("[{addr}]"));
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    // One pass over the labels (this runs on every request): their length
    // and characters, and whether one is punycode.
    let mut punycode = false;
    let mut last: &[u8] = &[];
    for label in host.as_bytes().split(|b| *b == b'.') {
        if label.is_empty()
            || label.len() > 63
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        punycode |= label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"));
        last = label;
    }
    // A name whose last label looks numeric is read as an IPv4 address by
    // browsers and the URL standard: accept only the plain dotted-quad form
    // (which `Ipv4Addr` parses only when canonical: no leading zeros, so it
    // is its own normal form).
    let numeric = last.iter().all(u8::is_ascii_digit)
        || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"0x"));
    if numeric {
        let _: Ipv4Addr = host.parse().ok()?;
        return Some(host.to_owned());
    }
    let host = host.to_ascii_lowercase();
    // A punycode label must decode (`xn--` alone does not): otherwise no URL
    // can name this host, and it could never be a return address.
    if punycode && url::Host::parse(&host).is_err() {
        return None;
    }
    Some(host)
}

/// Splits an origin-form or absolute-form target ("/a/b?x=1" or
/// "https://h/a?x") into (path, Option<query>). An absolute-form target
/// without a path gives "/". Anything else is split at the first `?` and left
/// for `normalize_path` to refuse.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let (rest, absolute) = match absolute_form_path(target) {
        Some(rest) if !target.starts_with('/') => (rest, true),
        _ => (target, false),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if absolute && path.is_empty() {
        ("/", query)
    } else {
        (path, query)
    }
}

/// For "scheme://authority/path?q", the part from the path on ("/path?q");
/// "" or "?q" when there is no path. `None` when `target` is not of that form.
fn absolute_form_path(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    let mut chars = scheme.bytes();
    let first_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
    if !first_ok || !chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some(&rest[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathError::*;

    #[test]
    fn normalize_path_table() {
        let ok: &[(&str, &str)] = &[
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//", "/"),
            ("///a//b///", "/a/b/"),
            ("/a/./b", "/a/b"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/../../", "/"),
            ("/./", "/"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.%2e/b", "/b"),
            ("/a/%2E/b", "/a/b"),
            ("/%41%62%7e%5f%2d", "/Ab~_-"),
            ("/a%3ab", "/a%3Ab"),
            ("/a%3Ab", "/a%3Ab"),
            ("/%25", "/%25"),
            ("/100%25/x", "/100%25/x"),
            ("/%25zz", "/%25zz"),
            ("/a//./b", "/a/b"),
            ("/a b", "/a%20b"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/%c3%a9", "/%C3%A9"),
            ("/a;x=1/b", "/a;x=1/b"),
            ("/..a/.b", "/..a/.b"),
            ("/a../b.", "/a../b."),
            ("/.x%3B", "/.x%3B"),
            ("/;x/a", "/;x/a"),
            ("/a/b?c", "/a/b%3Fc"),
            ("/a%23b", "/a%23b"),
            ("/%EF%BD%81dmin", "/%EF%BD%81dmin"),
            ("/%C3%80x", "/%C3%80x"),
            ("/[x]{y}|^`\"<>", "/%5Bx%5D%7By%7D%7C%5E%60%22%3C%3E"),
            ("/!$&'()*+,;=:@", "/!$&'()*+,;=:@"),
            ("/admin/../public", "/public"),
            ("/a/%2e%2e", "/"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_path(raw).as_deref(), Ok(*want), "{raw:?}");
            // Normalizing is idempotent.
            assert_eq!(normalize_path(want).as_deref(), Ok(*want), "{want:?}");
        }
        let bad: &[(&str, PathError)] = &[
            ("", NotAbsolute),
            ("a/b", NotAbsolute),
            ("*", NotAbsolute),
            ("%2Fa", NotAbsolute),
            ("/a%2Fb", EncodedSlash),
            ("/a%2fb", EncodedSlash),
            ("/a%5Cb", EncodedBackslash),
            ("/a%5cb", EncodedBackslash),
            ("/a\\b", Backslash),
            ("/\\evil", Backslash),
            ("/a\0b", Nul),
            ("/a%00b", Nul),
            ("/a\tb", ControlChar),
            ("/a\r\nb", ControlChar),
            ("/a%0Ab", ControlChar),
            ("/a%7f", ControlChar),
            ("/a\x7f", ControlChar),
            ("/a%", BadPercentEncoding),
            ("/a%4", BadPercentEncoding),
            ("/a%G1", BadPercentEncoding),
            ("/a%%41", BadPercentEncoding),
            ("/..", ClimbsAboveRoot),
            ("/../a", ClimbsAboveRoot),
            ("/a/../..", ClimbsAboveRoot),
            ("/a/../../", ClimbsAboveRoot),
            ("/%2e%2e/a", ClimbsAboveRoot),
            ("/a/..;/b", DotSegmentWithParams),
            ("/a/.;x/b", DotSegmentWithParams),
            ("/a/%2e%2e;/b", DotSegmentWithParams),
            ("/a/..%3B/b", DotSegmentWithParams),
            ("/...", DotsAndSpacesSegment),
            ("/a/.../b", DotsAndSpacesSegment),
            ("/...;x", DotsAndSpacesSegment),
            ("/...%3Bx", DotsAndSpacesSegment),
            ("/a/..%20/b", DotsAndSpacesSegment),
            ("/a/.%20./b", DotsAndSpacesSegment),
            ("/a/%20/b", DotsAndSpacesSegment),
            ("/a/. /b", DotsAndSpacesSegment),
            ("/a/%2e%2e%2e/b", DotsAndSpacesSegment),
            ("/a/..%3bx/b", DotSegmentWithParams),
            ("/a/.%3B/b", DotSegmentWithParams),
            ("/a/%2E%2E%3B/b", DotSegmentWithParams),
            ("/a//../b", DotDotAfterEmptySegment),
            ("//../a", DotDotAfterEmptySegment),
            ("/admin//../public", DotDotAfterEmptySegment),
            ("/a#b", Fragment),
            ("/admin#/../public", Fragment),
            ("/%252e%252E/x", DoubleEncoded),
            ("/%252F", DoubleEncoded),
            ("/a%2500", DoubleEncoded),
            ("/%25%32%65", DoubleEncoded),
            ("/%c0%ae%c0%ae/x", OverlongUtf8),
            ("/..%C0%AFx", OverlongUtf8),
            ("/..%e0%80%af", OverlongUtf8),
            ("/%f0%80%80%ae", OverlongUtf8),
            ("/x\u{FF0E}\u{FF0E}/y", LookalikeSeparator),
            ("/%EF%BC%8E%EF%BC%8E/x", LookalikeSeparator),
            ("/a%ef%bc%8fb", LookalikeSeparator),
            ("/a%EF%BC%BCb", LookalikeSeparator),
            ("/%E2%80%A5/x", LookalikeSeparator),
        ];
        for (raw, want) in bad {
            assert_eq!(normalize_path(raw), Err(*want), "{raw:?}");
        }
    }

    #[test]
    fn normal_paths_take_the_fast_path() {
        for p in ["/", "/a/b/", "/a%3Ab", "/x;y=1/%C3%A9", "/a./", "/a/"] {
            assert!(is_normal(p.as_bytes()), "{p:?}");
        }
        for p in [
            "//", "/a/./b", "/a%3ab", "/%41", "/a b", "/a/..", "/a//b", "/...",
        ] {
            assert!(!is_normal(p.as_bytes()), "{p:?}");
        }
    }

    /// A small xorshift generator: deterministic, no dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn never_panics_and_output_is_stable() {
        const ALPHABET: &[u8] = b"/./%2eEfF5cC0aA;x\\\0\t?#\x80\xc3\xa9 ";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let len = (rng.next() % 24) as usize;
            let mut bytes = vec![b'/'];
            for _ in 0..len {
                let r = rng.next();
                let b = if r.is_multiple_of(4) {
                    (r >> 8) as u8
                } else {
                    ALPHABET[((r >> 8) as usize) % ALPHABET.len()]
                };
                bytes.push(b);
            }
            let raw = String::from_utf8_lossy(&bytes);
            if let Ok(out) = normalize_path(&raw) {
                assert!(out.is_ascii(), "{raw:?} -> {out:?}");
                assert!(out.starts_with('/'), "{raw:?} -> {out:?}");
                assert!(!out.contains("//"), "{raw:?} -> {out:?}");
                assert!(
                    !out.split('/').any(|s| s == "." || s == ".."),
                    "{raw:?} -> {out:?}"
                );
                assert_eq!(normalize_path(&out).as_deref(), Ok(out.as_str()), "{raw:?}");
                assert!(is_normal(out.as_bytes()), "{raw:?} -> {out:?}");
            }
            let _ = normalize_host(&raw[1..]);
            let _ = split_target(&raw[1..]);
        }
    }

    #[test]
    fn normalize_host_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("example.com", Some("example.com")),
            ("Example.COM", Some("example.com")),
            ("example.com.", Some("example.com")),
            ("example.com:8080", Some("example.com")),
            ("Example.com.:443", Some("example.com")),
            ("example.com:", Some("example.com")),
            ("localhost", Some("localhost")),
            ("my_host.internal", Some("my_host.internal")),
            ("127.0.0.1", Some("127.0.0.1")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]", Some("[::1]")),
            ("[::1]:8080", Some("[::1]")),
            ("[0:0::1]", Some("[::1]")),
            ("[FE80::A]", Some("[fe80::a]")),
            ("xn--bcher-kva.example", Some("xn--bcher-kva.example")),
            ("XN--BCHER-KVA.example", Some("xn--bcher-kva.example")),
            ("xn--", None),
            ("XN--.example", None),
            ("a.xn--zz.example", None),
            ("", None),
            (".", None),
            ("example..com", None),
            (".example.com", None),
            ("example.com..", None),
            ("example.com:99999", None),
            ("example.com:80a", None),
            ("example.com:80:80", None),
            ("exa mple.com", None),
            ("user@example.com", None),
            ("example.com/x", None),
            ("bücher.example", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[zz::1]", None),
            ("[::1%25eth0]", None),
            ("127.1", None),
            ("127.0.0.01", None),
            ("010.0.0.1", None),
            ("0.0.0.0", Some("0.0.0.0")),
            ("0x7f.0.0.1", None),
            ("1.2.3.999", None),
            ("evil.com\0", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_host(raw).as_deref(), *want, "{raw:?}");
        }
    }

    #[test]
    fn split_target_table() {
        let cases: &[(&str, (&str, Option<&str>))] = &[
            ("/a/b?x=1", ("/a/b", Some("x=1"))),
            ("/a/b", ("/a/b", None)),
            ("/a?", ("/a", Some(""))),
            ("/a?b?c", ("/a", Some("b?c"))),
            ("https://h/a?x", ("/a", Some("x"))),
            ("http://h:8080/a/b", ("/a/b", None)),
            ("https://h", ("/", None)),
            ("https://h?x=1", ("/", Some("x=1"))),
            ("*", ("*", None)),
            ("h:443", ("h:443", None)),
            ("a/b?x", ("a/b", Some("x"))),
            ("//h/a", ("//h/a", None)),
        ];
        for (target, want) in cases {
            assert_eq!(split_target(target), *want, "{target:?}");
        }
    }
}
