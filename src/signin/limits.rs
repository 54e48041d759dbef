//! Sign-in's rate limits (`[limits]`): per client IP for asking for links
//! and for using links and codes, and any other counted key (per address,
//! per user for bearer tokens). The counters are the store's (`Store::hit`,
//! shared by every instance); the 429 is rendered by gate.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::Ipv6Net;

use crate::http::error::GateError;
use crate::http::request::Ctx;
use crate::signin::SignIn;
use crate::store::Store;

/// Which per-client-IP limit a POST counts against (`[limits]`).
pub(super) enum PerIp {
    /// Asking for links.
    Links,
    /// Using links and codes.
    Redemptions,
}

pub(super) async fn limit(cx: &SignIn<'_>, ctx: &Ctx, which: PerIp) -> Result<(), GateError> {
    let l = cx.limits;
    let (key, max, window) = match which {
        PerIp::Links => ("link-ip", l.links_per_ip, l.link_window),
        PerIp::Redemptions => ("verify-ip", l.verify_per_ip, l.verify_window),
    };
    let client = client_key(ctx.client.ip, l.ipv6_prefix);
    within_limit(cx, &format!("{key}:{client}"), max, window).await
}

/// The client as per-IP limits count it: an IPv4 address (IPv4-mapped IPv6
/// too) by itself, an IPv6 address by its network of `v6_prefix` bits
/// (`2001:db8:1:2::/64`), since one site holds a whole /64 and could
/// otherwise take a fresh address for every request.
fn client_key(ip: IpAddr, v6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => Ipv6Net::new(v6, v6_prefix.min(128))
                .map(|n| n.trunc().to_string())
                .unwrap_or_else(|_| v6.to_string()),
        },
    }
}

/// Counts one hit on the store's counter `key` (shared by every instance);
/// past `max` in `window`: 429 with `Retry-After`.
pub(super) async fn within_limit(
    cx: &SignIn<'_>,
    key: &str,
    max: u64,
    window: Duration,
) -> Result<(), GateError> {
    let (count, left) = cx.store.hit(key, window).await?;
    if count > max {
        return Err(GateError::TooManyRequests { retry_after: left });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_network() {
        let key = |ip: &str, bits| client_key(ip.parse().unwrap_or_else(|_| unreachable!()), bits);
        let cases: &[(&str, u8, &str)] = &[
            ("2001:db8:1:2::1", 64, "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"),
            ("2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"),
            ("2001:db8:1:2::1", 48, "2001:db8:1::/48"),
            ("2001:db8:1:2::1", 1, "::/1"),
            ("::ffff:192.0.2.1", 64, "192.0.2.1"),
            ("192.0.2.1", 64, "192.0.2.1"),
            ("::1", 64, "::/64"),
        ];
        for (ip, bits, want) in cases {
            assert_eq!(key(ip, *bits), *want, "{ip} /{bits}");
        }
    }
}
