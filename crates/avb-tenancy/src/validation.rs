//! Field validators shared by every service (spec §7.3 rules). Each pushes into a [`FieldErrors`] so one
//! request reports every bad field at once.

use avb_core::FieldErrors;
use regex::Regex;
use std::sync::LazyLock;

#[allow(clippy::expect_used)] // constant patterns, checked by the tests below
static SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$").expect("valid regex"));
#[allow(clippy::expect_used)]
static COLOR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^#[0-9A-Fa-f]{6}$").expect("valid regex"));
#[allow(clippy::expect_used)]
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
        .expect("valid regex")
});

/// Character length (not bytes) between `min` and `max` inclusive.
pub fn length(errors: &mut FieldErrors, field: &str, value: &str, min: usize, max: usize) -> bool {
    let n = value.chars().count();
    if n < min || n > max {
        errors.push(
            field,
            "length",
            format!("must be between {min} and {max} characters"),
        );
        return false;
    }
    true
}

/// Like [`length`], and also rejects text that is blank after trimming or contains control characters.
pub fn text(errors: &mut FieldErrors, field: &str, value: &str, min: usize, max: usize) -> bool {
    if !length(errors, field, value, min, max) {
        return false;
    }
    if min > 0 && value.trim().is_empty() {
        errors.push(field, "blank", "must not be blank");
        return false;
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        errors.push(field, "format", "must not contain control characters");
        return false;
    }
    true
}

/// Tenant slug: 3–100 characters matching `^[a-z0-9][a-z0-9-]*[a-z0-9]$` (spec §7.3).
pub fn slug(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if !length(errors, field, value, 3, 100) {
        return false;
    }
    if !SLUG.is_match(value) {
        errors.push(
            field,
            "pattern",
            "must be lowercase alphanumeric with hyphens, starting and ending with alphanumeric",
        );
        return false;
    }
    true
}

/// True when `value` is a valid slug (for property tests and resolution).
pub fn is_slug(value: &str) -> bool {
    (3..=100).contains(&value.len()) && SLUG.is_match(value)
}

/// E-mail address (≤ 254 characters, one `@`, a dotted domain).
pub fn email(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if value.len() > 254 || !EMAIL.is_match(value) {
        errors.push(field, "format", "must be a valid e-mail address");
        return false;
    }
    true
}

/// `#RRGGBB`.
pub fn color(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if !COLOR.is_match(value) {
        errors.push(field, "pattern", "must be a colour in #RRGGBB form");
        return false;
    }
    true
}

/// Empty, or an absolute `http`/`https` URL with a host, ≤ 2048 characters.
pub fn optional_url(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let ok = value.len() <= 2048
        && url::Url::parse(value)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
            .unwrap_or(false);
    if !ok {
        errors.push(field, "format", "must be an http or https URL");
    }
    ok
}

/// An IPv4/IPv6 address or CIDR range (`10.0.0.0/8`, `2001:db8::/32`) with host bits clear.
pub fn cidr(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if parse_cidr(value).is_none() {
        errors.push(
            field,
            "format",
            "must be an IP address or CIDR range with host bits clear",
        );
        return false;
    }
    true
}

/// Parses `addr[/len]`; returns the network address and prefix length.
pub fn parse_cidr(value: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (value, None),
    };
    let ip: std::net::IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) && l.len() <= 3 => {
            l.parse().ok()?
        }
        Some(_) => return None,
        None => max,
    };
    if len > max {
        return None;
    }
    let host_bits_clear = match ip {
        std::net::IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            len == 32 || bits & (u32::MAX >> len) == 0
        }
        std::net::IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            len == 128 || bits & (u128::MAX >> len) == 0
        }
    };
    host_bits_clear.then_some((ip, len))
}

/// True when `ip` lies in the CIDR range `range` (already validated).
pub fn cidr_contains(range: &str, ip: std::net::IpAddr) -> bool {
    let Some((net, len)) = parse_cidr(range) else {
        return false;
    };
    match (net, ip) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// An integer in `min..=max`.
pub fn range_u64(errors: &mut FieldErrors, field: &str, value: u64, min: u64, max: u64) -> bool {
    if value < min || value > max {
        errors.push(field, "range", format!("must be between {min} and {max}"));
        return false;
    }
    true
}

/// A finite float in `min..=max`.
pub fn range_f32(errors: &mut FieldErrors, field: &str, value: f32, min: f32, max: f32) -> bool {
    if !value.is_finite() || value < min || value > max {
        errors.push(field, "range", format!("must be between {min} and {max}"));
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["abc", "acme-corp", "a1b", "0-0", &"a".repeat(100)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "Abc",
            "a_b",
            "a b",
            "ab\u{e9}",
            &"a".repeat(101),
            "",
        ] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn colors_urls_emails_cidrs() {
        let mut e = FieldErrors::new();
        assert!(color(&mut e, "c", "#A0b1C2"));
        assert!(!color(&mut e, "c", "#abc"));
        assert!(optional_url(&mut e, "u", ""));
        assert!(optional_url(&mut e, "u", "https://example.com/logo.png"));
        assert!(!optional_url(&mut e, "u", "javascript:alert(1)"));
        assert!(!optional_url(&mut e, "u", "ftp://example.com"));
        assert!(email(&mut e, "e", "a.b+c@example.co.uk"));
        assert!(!email(&mut e, "e", "no-at.example.com"));
        assert!(!email(&mut e, "e", "a@b"));
        assert!(cidr(&mut e, "r", "10.0.0.0/8"));
        assert!(cidr(&mut e, "r", "2001:db8::/32"));
        assert!(cidr(&mut e, "r", "192.168.1.7"));
        assert!(!cidr(&mut e, "r", "10.0.0.1/8"));
        assert!(!cidr(&mut e, "r", "10.0.0.0/33"));
        assert!(!cidr(&mut e, "r", "10.0.0.0/"));
        assert!(cidr_contains("10.0.0.0/8", "10.2.3.4".parse().unwrap()));
        assert!(!cidr_contains("10.0.0.0/8", "11.2.3.4".parse().unwrap()));
        assert!(cidr_contains("0.0.0.0/0", "11.2.3.4".parse().unwrap()));
    }
}
