//! Which client a request comes from when flare sits behind a proxy: the peer address, unless it
//! is one of `trusted_proxies`, in which case the address that proxy reports (`Forwarded`,
//! RFC 7239, or else `X-Forwarded-For`), read from the right and skipping trusted hops, so a
//! client cannot choose its address by sending the header itself.

use actix_web::http::header::HeaderMap;
use std::net::IpAddr;

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.net), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as a dual-stack socket reports them) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub(crate) fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// The client's address: `peer` itself unless it is a trusted proxy; then the right-most address
/// in the forwarding headers that is not itself a trusted proxy.
pub(crate) fn client_ip(trusted: &[Cidr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let hops = forwarded_for(headers);
    for hop in hops.iter().rev() {
        if !is_trusted(trusted, *hop) {
            return *hop;
        }
    }
    hops.first().copied().unwrap_or(peer)
}

/// The addresses a request passed through, nearest the client first: `Forwarded: for=` when the
/// request has it, else `X-Forwarded-For`. Obfuscated or unknown identifiers are left out.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(v.trim().trim_matches('"')))
                        .flatten()
                })
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .filter_map(|v| parse_node(v))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[::1]`, `[::1]:5678` or `::1`.
fn parse_node(v: &str) -> Option<IpAddr> {
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.rsplit_once(':')?.0.parse().ok()
}

/// The client a request comes from: its peer, or what a trusted proxy reports.
pub(crate) fn client_of(
    trusted: &[crate::http::proxies::Cidr],
    req: &actix_web::HttpRequest,
) -> std::net::IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    client_ip(trusted, peer, req.headers())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn blocks_contain_what_they_should() {
        let lan = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains("10.200.3.4".parse().unwrap()));
        assert!(lan.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!lan.contains("11.0.0.1".parse().unwrap()));
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_for_its_own_hop() {
        let trusted = vec![
            Cidr::parse("127.0.0.1").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        // A client's own header is worth nothing.
        assert_eq!(client_ip(&trusted, stranger, &xff), stranger);
        // Through trusted hops, the right-most untrusted address: not the spoofable left end.
        assert_eq!(
            client_ip(&trusted, proxy, &xff),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let fwd = headers(&[(
            "forwarded",
            "for=\"[2001:db8::5]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            client_ip(&trusted, proxy, &fwd),
            "2001:db8::5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(&trusted, proxy, &headers(&[])), proxy);
        assert_eq!(
            client_ip(&[], proxy, &xff),
            proxy,
            "nothing trusted by default"
        );
    }
}
