//! `Problems`: what the compile step collects instead of stopping at the
//! first mistake. Each line names its key, the value found and what was
//! expected. The section compilers (the other files here, and the owners'
//! own `from_config`s) add to it; `Settings::compile` reports them all.

use std::net::SocketAddr;
use std::time::Duration;

/// Collects problems while compiling; each is one line naming its key.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<String>);

impl Problems {
    pub(super) fn add(&mut self, line: String) {
        self.0.push(line);
    }

    /// The value of a section its owner compiled, or `None` with the
    /// owner's problem lines taken over.
    pub(super) fn take<T>(&mut self, result: Result<T, Vec<String>>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(lines) => {
                self.0.extend(lines);
                None
            }
        }
    }

    pub(super) fn duration(&mut self, key: &str, value: &str) -> Duration {
        match humantime::parse_duration(value) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.add(format!(
                    "{key}: {value:?} is not a duration; expected a positive duration like \"90s\", \"15m\" or \"12h\""
                ));
                Duration::from_secs(1)
            }
        }
    }

    pub(super) fn socket_addr(&mut self, key: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.add(format!(
                    "{key}: {value:?} is not an address to listen on; expected IP:PORT like \"0.0.0.0:8080\""
                ));
                None
            }
        }
    }
}
