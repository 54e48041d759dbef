//! `[[apps]]`: the hosts latchkey knows, and for each the upstream it
//! proxies to (none in forward-auth deployments) with the CA that upstream
//! is verified against. Proxying is `upstream`'s; this file checks hosts
//! and upstream addresses and refuses duplicates.

use std::collections::HashMap;
use std::path::Path;

use super::problems::Problems;
use crate::config::AppConfig;
use crate::policy::path::normalize_host;
use crate::tls;
use crate::upstream::Upstream;

pub struct AppSettings {
    pub host: String,
    pub upstream: Option<Upstream>,
}

/// Normalized host → app. `upstream_ca`: `server.upstream_ca`.
pub(super) fn compile(
    p: &mut Problems,
    list: &[AppConfig],
    upstream_ca: Option<&str>,
) -> HashMap<String, AppSettings> {
    let mut apps = HashMap::new();
    for (i, a) in list.iter().enumerate() {
        let Some(host) = normalize_host(&a.host).filter(|h| !h.contains(':') || h.starts_with('['))
        else {
            p.add(format!(
                "apps[{i}].host: {:?} is not a host name; expected like \"app.example.com\" (no scheme, no port)",
                a.host
            ));
            continue;
        };
        let upstream = match a.upstream.as_deref() {
            None | Some("") => None,
            Some(u) => match Upstream::parse(u) {
                Ok(up) => trust(p, i, up, a.ca_file.as_deref(), upstream_ca),
                Err(why) => {
                    p.add(format!("apps[{i}].upstream: {u:?}: {why}"));
                    None
                }
            },
        };
        if apps
            .insert(
                host.clone(),
                AppSettings {
                    host: host.clone(),
                    upstream,
                },
            )
            .is_some()
        {
            p.add(format!(
                "apps[{i}].host: {host:?} is listed twice; expected each host once"
            ));
        }
    }
    apps
}

/// Gives an https upstream its CA: the app's `ca_file`, else
/// `server.upstream_ca`, else the public web roots.
fn trust(
    p: &mut Problems,
    i: usize,
    up: Upstream,
    ca_file: Option<&str>,
    upstream_ca: Option<&str>,
) -> Option<Upstream> {
    if !up.is_https() {
        if let Some(ca) = ca_file {
            p.add(format!(
                "apps[{i}].ca_file: {ca:?} is set for the http upstream {up}; expected an https:// upstream (or no ca_file)"
            ));
            return None;
        }
        return Some(up);
    }
    let (key, ca) = match (ca_file, upstream_ca) {
        (Some(ca), _) => (format!("apps[{i}].ca_file"), ca),
        (None, Some(ca)) => ("server.upstream_ca".to_owned(), ca),
        (None, None) => return Some(up),
    };
    match up.trusting(Path::new(ca)) {
        Ok(up) => Some(up),
        Err(e) => {
            p.add(format!(
                "{key}: {ca:?}: {}; expected a file of PEM CA certificates",
                tls::explain(&e)
            ));
            None
        }
    }
}
