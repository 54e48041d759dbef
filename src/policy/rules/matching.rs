//! Matching a request against the compiled rules: the host index that
//! picks the candidate rules, the request path split once into the segments
//! rules compare (path parameters removed; in IIS mode, trailing dots and
//! spaces too), and each pattern's `matches`. Which rule decides, and what,
//! is `decide`'s (in `mod.rs`).

use super::{HostPattern, PathPattern, Request, Rules, Segment};

impl Rules {
    /// The rules that can match a normalized `host`, in order: those of its
    /// exact entry, else of its longest wildcard suffix, else the rules for
    /// any host. (A host matching a wildcard ends with that wildcard's
    /// suffix, so its longest such suffix's list holds every wildcard that
    /// matches it.)
    pub(super) fn candidates(&self, host: &str) -> &[usize] {
        if let Some(list) = self.by_host.get(host) {
            return list;
        }
        if !self.by_suffix.is_empty() {
            let mut from = 0;
            while let Some(dot) = host.get(from..).and_then(|rest| rest.find('.')) {
                let at = from + dot;
                if let Some(list) = host.get(at..).and_then(|s| self.by_suffix.get(s)) {
                    return list;
                }
                from = at + 1;
            }
        }
        &self.any_host
    }

    /// `segments`: the request path already split (see `Segments`), or
    /// `None` to split it here.
    pub(super) fn matches(&self, i: usize, req: &Request<'_>, segments: Option<&[&str]>) -> bool {
        let Some(rule) = self.rules.get(i) else {
            return false;
        };
        rule.host.matches(req.host)
            && rule
                .methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| m == req.method))
            && match segments {
                Some(segments) => rule.path.matches_split(segments, self.case_insensitive),
                None => rule.path.matches(req.path, self.case_insensitive),
            }
    }
}

/// Most paths have at most this many segments; longer ones are split per rule.
pub(super) const MAX_SEGMENTS: usize = 24;

/// A request path split once per decision into the segments rules compare
/// (parameters removed, empty segments dropped), on the stack.
pub(super) struct Segments<'a> {
    list: [&'a str; MAX_SEGMENTS],
    len: usize,
}

impl<'a> Segments<'a> {
    /// `None` when the path has more than `MAX_SEGMENTS` segments.
    pub(super) fn split(path: &'a str, case_insensitive: bool) -> Option<Segments<'a>> {
        let mut out = Segments {
            list: [""; MAX_SEGMENTS],
            len: 0,
        };
        for segment in request_segments(path, case_insensitive) {
            *out.list.get_mut(out.len)? = segment;
            out.len += 1;
        }
        Some(out)
    }

    pub(super) fn as_slice(&self) -> &[&'a str] {
        self.list.get(..self.len).unwrap_or(&[])
    }
}

/// The segments of a request path as rules compare them: path parameters
/// (`;x=1`, `%3Bx=1`) removed, in IIS mode (`case_insensitive`) trailing
/// dots and spaces too, then empty segments dropped.
fn request_segments(path: &str, case_insensitive: bool) -> impl Iterator<Item = &str> {
    path.split('/')
        .map(without_params)
        .map(move |s| if case_insensitive { windows_name(s) } else { s })
        .filter(|s| !s.is_empty())
}

impl HostPattern {
    pub(super) fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len()
                    && host
                        .get(host.len() - suffix.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            }
        }
    }
}

impl PathPattern {
    fn matches(&self, path: &str, case_insensitive: bool) -> bool {
        let mut segments = request_segments(path, case_insensitive);
        for want in &self.segments {
            let Some(got) = segments.next() else {
                return false;
            };
            if !want.matches(got, case_insensitive) {
                return false;
            }
        }
        self.any_depth || segments.next().is_none()
    }

    /// `matches` on a path already split by `request_segments`.
    fn matches_split(&self, segments: &[&str], case_insensitive: bool) -> bool {
        let fits = if self.any_depth {
            segments.len() >= self.segments.len()
        } else {
            segments.len() == self.segments.len()
        };
        fits && self
            .segments
            .iter()
            .zip(segments)
            .all(|(want, got)| want.matches(got, case_insensitive))
    }
}

impl Segment {
    fn matches(&self, got: &str, case_insensitive: bool) -> bool {
        match self {
            Segment::One => true,
            Segment::Literal(lit) if case_insensitive => lit.eq_ignore_ascii_case(got),
            Segment::Literal(lit) => lit == got,
        }
    }
}

/// A segment without its path parameters: cut at the first `;` or `%3B`.
fn without_params(segment: &str) -> &str {
    let raw = segment.find(';');
    let encoded = segment
        .as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'3' && w[2].eq_ignore_ascii_case(&b'b'));
    match (raw, encoded) {
        (Some(a), Some(b)) => &segment[..a.min(b)],
        (Some(a), None) | (None, Some(a)) => &segment[..a],
        (None, None) => segment,
    }
}

/// A segment as Windows reads a file name: trailing dots and spaces
/// (raw or `%20`) dropped. `.` and `..` never get here (normalized away).
fn windows_name(mut segment: &str) -> &str {
    loop {
        if let Some(s) = segment
            .strip_suffix('.')
            .or_else(|| segment.strip_suffix(' '))
        {
            segment = s;
        } else if let Some(s) = segment.strip_suffix("%20") {
            segment = s;
        } else {
            return segment;
        }
    }
}
