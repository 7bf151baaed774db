//! Durations as written in specs: `250ms`, `2s`, `5m`, `1h`, `1d`, `1m30s`.

/// Parse a duration into milliseconds, or say what is wrong with it.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let factor = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("missing unit after `{number}`")),
            other => return Err(format!("unknown unit `{other}`")),
        };
        total = number
            .checked_mul(factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| "duration too large".to_string())?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("2s"), Ok(2_000));
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("1d"), Ok(86_400_000));
    }

    #[test]
    fn rejects_bad_durations() {
        assert!(parse_millis("10").unwrap_err().contains("missing unit"));
        assert!(parse_millis("10 sec").unwrap_err().contains("unknown unit"));
        assert!(parse_millis("s").unwrap_err().contains("expected a number"));
        assert!(parse_millis("").is_err());
    }
}
