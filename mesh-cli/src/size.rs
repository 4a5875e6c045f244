//! Sizes as people type and read them: `500M`, `5G`, `1024` (bytes), in
//! powers of 1024.

const UNITS: &[(&str, u64)] = &[
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
];

/// Reads a size like `500M` or `5G` (`K`, `M`, `G`, `T`, with or without
/// `B`/`iB`; none is bytes).
pub fn parse(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let wrong = || format!("{s:?} is not a size like 500M or 5G");
    let n: u64 = digits.parse().map_err(|_| wrong())?;
    let unit = unit.trim().to_ascii_uppercase();
    let bare = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let factor = match bare {
        "" => 1,
        u => UNITS
            .iter()
            .find(|(name, _)| *name == u)
            .map(|(_, f)| *f)
            .ok_or_else(wrong)?,
    };
    n.checked_mul(factor).ok_or_else(wrong)
}

/// `bytes` the way a listing shows it: `512 B`, `1.5 GiB`.
pub fn show(bytes: u64) -> String {
    for (name, factor) in UNITS {
        if bytes >= *factor {
            return format!("{:.1} {name}iB", bytes as f64 / *factor as f64);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse("5G"), Ok(5 << 30));
        assert_eq!(super::parse("500M"), Ok(500 << 20));
        assert_eq!(super::parse("500MiB"), Ok(500 << 20));
        assert_eq!(super::parse("2kb"), Ok(2 << 10));
        assert_eq!(super::parse("1024"), Ok(1024));
        assert!(super::parse("lots").is_err());
        assert!(super::parse("5X").is_err());
        assert!(super::parse("B").is_err());
        assert!(super::parse("5BB").is_err());
        assert!(super::parse("99999999999T").is_err());
        assert_eq!(super::show(512), "512 B");
        assert_eq!(super::show(3 << 29), "1.5 GiB");
    }
}
