//! Sizes, durations and networks written as short strings (`512m`, `15m`, `10.0.0.0/8`), and
//! range checks for numbers, as the config files and the API write them. Here rather than in
//! `berth-config` because a [`Template`](crate::template::Template) travels over the API too.
//!
//! Both parsers are a dozen lines; a crate for each would cost more than it saves.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const KIB: u64 = 1024;
const UNITS: [(char, u64); 4] = [
    ('t', KIB.pow(4)),
    ('g', KIB.pow(3)),
    ('m', KIB.pow(2)),
    ('k', KIB),
];

/// A container memory limit such as `512m` or `1g`: a whole number with an optional unit `k`,
/// `m`, `g` or `t` (powers of 1024, as Docker reads them; `mb`, `MiB` and friends are accepted
/// too), or a number of bytes. From 16m to 256g.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Memory(u64);

impl Memory {
    /// The smallest limit accepted: below this a shell does not start reliably.
    pub const MIN: u64 = 16 * KIB * KIB;
    /// The largest limit accepted.
    pub const MAX: u64 = 256 * KIB * KIB * KIB;

    /// The limit in bytes.
    #[must_use]
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// For defaults written in code, which the caller keeps in range.
    #[must_use]
    pub const fn from_bytes_unchecked(bytes: u64) -> Self {
        Self(bytes)
    }
}

impl FromStr for Memory {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_size(text, "a memory limit", "16m", "256g", Self::MIN..=Self::MAX).map(Self)
    }
}

/// Bytes from `text` (a whole number with an optional unit), within `range`, whose ends are
/// written `low` and `high` in messages about `what`.
fn parse_size(
    text: &str,
    what: &str,
    low: &str,
    high: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let bad = || {
        format!("expected a size such as \"512m\" or \"1g\" (from {low} to {high}), found {text:?}")
    };
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let factor = match unit {
        "" => 1,
        _ => {
            UNITS
                .iter()
                .find(|(u, _)| unit.len() == 1 && unit.starts_with(*u))
                .ok_or_else(bad)?
                .1
        }
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = number.checked_mul(factor).ok_or_else(bad)?;
    if !range.contains(&bytes) {
        return Err(format!("{what} is from {low} to {high}, found {text:?}"));
    }
    Ok(bytes)
}

fn format_size(bytes: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match UNITS.iter().find(|(_, size)| bytes.is_multiple_of(*size)) {
        Some((unit, size)) => write!(f, "{}{unit}", bytes / size),
        None => write!(f, "{bytes}"),
    }
}

/// An amount of disk space such as `20g` or `1t`, in the units of [`Memory`], from 1m to
/// 1024t.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiskSize(u64);

impl DiskSize {
    /// The smallest size accepted.
    pub const MIN: u64 = KIB * KIB;
    /// The largest size accepted.
    pub const MAX: u64 = 1024 * KIB.pow(4);

    /// The size in bytes.
    #[must_use]
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// For defaults written in code, which the caller keeps in range.
    #[must_use]
    pub const fn from_bytes_unchecked(bytes: u64) -> Self {
        Self(bytes)
    }
}

impl FromStr for DiskSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_size(text, "a disk size", "1m", "1024t", Self::MIN..=Self::MAX).map(Self)
    }
}

impl fmt::Display for DiskSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_size(self.0, f)
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_size(self.0, f)
    }
}

/// A duration such as `30s`, `15m`, `2h`, `7d` or `1h30m` (units `s`, `m`, `h`, `d`), from one
/// second to 365 days.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(u64);

const DURATION_UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

impl HumanDuration {
    /// The longest duration accepted: 365 days.
    pub const MAX_SECS: u64 = 365 * 86_400;

    /// The duration.
    #[must_use]
    pub fn get(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }

    /// The duration in whole seconds.
    #[must_use]
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// For defaults written in code, which the caller keeps in range.
    #[must_use]
    pub const fn from_secs_unchecked(secs: u64) -> Self {
        Self(secs)
    }

    /// `secs` seconds; `None` outside one second to 365 days.
    #[must_use]
    pub fn from_secs(secs: u64) -> Option<Self> {
        (1..=Self::MAX_SECS).contains(&secs).then_some(Self(secs))
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "expected a duration such as \"30s\", \"15m\", \"2h\" or \"1h30m\", found {text:?}"
            )
        };
        let mut total: u64 = 0;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (digits, tail) = rest.split_at(end);
            let mut tail = tail.chars();
            let unit = tail.next().ok_or_else(bad)?;
            let factor = DURATION_UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .ok_or_else(bad)?
                .1;
            let number: u64 = digits.parse().map_err(|_| bad())?;
            total = number
                .checked_mul(factor)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(bad)?;
            rest = tail.as_str();
        }
        Self::from_secs(total)
            .ok_or_else(|| format!("a duration is from 1s to 365d, found {text:?}"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0;
        for (unit, size) in DURATION_UNITS {
            if left >= size {
                write!(f, "{}{unit}", left / size)?;
                left %= size;
            }
        }
        Ok(())
    }
}

macro_rules! string_type {
    ($ty:ident, $pattern:literal, $description:literal) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($ty))
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(D::Error::custom)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description,
                })
            }
        }
    };
}

string_type!(
    Memory,
    "^[0-9]+([kKmMgGtT]([iI]?[bB])?|[bB])?$",
    "A size such as \"512m\" or \"1g\" (units k, m, g, t are powers of 1024), from 16m to 256g."
);
string_type!(
    DiskSize,
    "^[0-9]+([kKmMgGtT]([iI]?[bB])?|[bB])?$",
    "An amount of disk space such as \"20g\" or \"1t\" (units k, m, g, t are powers of 1024), from 1m to 1024t."
);
string_type!(
    HumanDuration,
    "^([0-9]+[smhd])+$",
    "A duration such as \"30s\", \"15m\", \"2h\", \"7d\" or \"1h30m\", from 1s to 365d."
);

string_type!(
    IpNet,
    "^[0-9a-fA-F.:]+(/[0-9]{1,3})?$",
    "An IP address (\"127.0.0.1\", \"::1\") or a network in CIDR notation (\"10.0.0.0/8\", \"fd00::/8\")."
);

/// An IP address or a network (`10.0.0.0/8`): the addresses whose first `prefix` bits are
/// those of `addr`. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as IPv4.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in the network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_bits(u32::from(net).into(), 32, self.prefix)
                    == prefix_bits(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_bits(u128::from(net), 128, self.prefix)
                    == prefix_bits(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The first `prefix` bits of a `width`-bit number.
fn prefix_bits(value: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        value >> (width - prefix)
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "expected an IP address or a network such as 10.0.0.0/8 or fd00::/8, found {text:?}"
            )
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if prefix > width {
            return Err(format!(
                "a prefix length is at most {width} for this address, found {text:?}"
            ));
        }
        Ok(Self { addr, prefix })
    }
}

impl IpNet {
    fn canonical(addr: IpAddr, prefix: u8) -> String {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        if prefix == width {
            addr.to_string()
        } else {
            format!("{addr}/{prefix}")
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::canonical(self.addr, self.prefix))
    }
}

/// For `deserialize_with`: a whole number from `MIN` to `MAX`.
///
/// # Errors
///
/// When the number is not one or out of range.
pub fn within<'de, D, T, const MIN: i64, const MAX: i64>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + Into<i128> + fmt::Display,
{
    let value = T::deserialize(deserializer)?;
    check_range::<T, MIN, MAX>(value).map_err(D::Error::custom)
}

/// For `deserialize_with` on an optional number.
///
/// # Errors
///
/// When the number is not one or out of range.
pub fn within_opt<'de, D, T, const MIN: i64, const MAX: i64>(
    deserializer: D,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + Into<i128> + fmt::Display,
{
    Option::<T>::deserialize(deserializer)?
        .map(check_range::<T, MIN, MAX>)
        .transpose()
        .map_err(D::Error::custom)
}

fn check_range<T: Copy + Into<i128> + fmt::Display, const MIN: i64, const MAX: i64>(
    value: T,
) -> Result<T, String> {
    if (i128::from(MIN)..=i128::from(MAX)).contains(&value.into()) {
        Ok(value)
    } else {
        Err(format!("must be from {MIN} to {MAX}, found {value}"))
    }
}

/// For `deserialize_with`: a number of CPUs from 0.01 to 64.
///
/// # Errors
///
/// When the number is not one or out of range.
pub fn cpus<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(deserializer)? {
        Some(cpus) if !(0.01..=64.0).contains(&cpus) => Err(D::Error::custom(format!(
            "a number of CPUs is from 0.01 to 64, found {cpus}"
        ))),
        cpus => Ok(cpus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_print_and_contain() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let net = |t: &str| t.parse::<IpNet>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(
            !net("0.0.0.0/0").contains(ip("::1")),
            "IPv4 networks hold IPv4 only"
        );
        assert!(net("fd00::/8").contains(ip("fd12:3456::1")));
        assert!(net("::1").contains(ip("::1")));
        // An IPv4-mapped IPv6 peer (a dual-stack socket) is its IPv4 address.
        assert!(net("192.168.0.0/16").contains(ip("::ffff:192.168.1.1")));
        assert!(net("::ffff:192.168.1.1").contains(ip("192.168.1.1")));
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("10.0.0.1/32").to_string(), "10.0.0.1");
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "example.com",
            "10.0.0",
            "10.0.0.0/0008",
            " 10.0.0.1",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn memory_reads_docker_units() {
        for (text, bytes) in [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("2GiB", 2 << 30),
            ("16mb", 16 << 20),
            ("16777216", 16 << 20),
        ] {
            assert_eq!(text.parse::<Memory>().unwrap().bytes(), bytes, "{text}");
        }
        assert_eq!("1024m".parse::<Memory>().unwrap().to_string(), "1g");
        assert_eq!("1536m".parse::<Memory>().unwrap().to_string(), "1536m");
    }

    #[test]
    fn memory_refuses_junk_and_out_of_range() {
        for text in ["", "m", "1.5g", "-1g", "1x", "1gg", "99999999999999999999g"] {
            assert!(text.parse::<Memory>().is_err(), "{text}");
        }
        assert_eq!(
            "8m".parse::<Memory>().unwrap_err(),
            "a memory limit is from 16m to 256g, found \"8m\""
        );
        assert!("257g".parse::<Memory>().is_err());
        assert!("256g".parse::<Memory>().is_ok());
    }

    #[test]
    fn disk_sizes_read_print_and_refuse() {
        assert_eq!("20g".parse::<DiskSize>().unwrap().bytes(), 20 << 30);
        assert_eq!("1024t".parse::<DiskSize>().unwrap().to_string(), "1024t");
        assert_eq!("1536m".parse::<DiskSize>().unwrap().to_string(), "1536m");
        assert_eq!(
            "1025t".parse::<DiskSize>().unwrap_err(),
            "a disk size is from 1m to 1024t, found \"1025t\""
        );
        for text in ["", "1k", "-1g", "1.5g", "20 gigs", "99999999999999999999t"] {
            assert!(text.parse::<DiskSize>().is_err(), "{text}");
        }
    }

    #[test]
    fn durations_read_and_print() {
        for (text, secs) in [
            ("30s", 30),
            ("15m", 900),
            ("2h", 7200),
            ("1d", 86_400),
            ("1h30m", 5400),
        ] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("90m".parse::<HumanDuration>().unwrap().to_string(), "1h30m");
        for text in [
            "",
            "15",
            "m",
            "0s",
            "15x",
            "1.5h",
            "366d",
            " 1 h",
            "99999999999999999999s",
        ] {
            assert!(text.parse::<HumanDuration>().is_err(), "{text}");
        }
    }

    #[test]
    fn ranges_name_their_bounds() {
        assert_eq!(check_range::<u32, 1, 100>(100), Ok(100));
        assert_eq!(
            check_range::<u32, 1, 100>(0),
            Err("must be from 1 to 100, found 0".into())
        );
    }
}
