//! Sizes as written in specs: `64KiB`, `512MiB`, `1GiB` (powers of 1024), `100MB`,
//! `1GB` (powers of 1000), `4096` or `4096B` (bytes).

/// Every unit, with its factor.
pub const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parse a size into bytes, or say what is wrong with it.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    if digits == 0 {
        return Err(if text.is_empty() {
            "empty size".to_string()
        } else {
            format!("expected a number at `{text}`")
        });
    }
    let number: u64 = text[..digits].parse().map_err(|_| "number too large".to_string())?;
    let unit = text[digits..].trim_start();
    let factor = if unit.is_empty() {
        1
    } else {
        match UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, factor)) => *factor,
            None => return Err(format!("unknown unit `{unit}`")),
        }
    };
    number.checked_mul(factor).ok_or_else(|| "size too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("100MB"), Ok(100_000_000));
        assert_eq!(parse_bytes("100 MB"), Ok(100_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("4096B"), Ok(4096));
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(parse_bytes("12 bananas"), Err("unknown unit `bananas`".to_string()));
        assert_eq!(parse_bytes("MiB"), Err("expected a number at `MiB`".to_string()));
        assert_eq!(parse_bytes("99999999TiB"), Err("size too large".to_string()));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("1.5GiB").is_err());
    }
}
