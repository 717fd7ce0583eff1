use std::time::Duration;

/// Parses a duration such as `10s`, `250ms`, `1m30s`, `2h` or `1d`.
///
/// Units: `ms`, `s`, `m`, `h`, `d`. Several terms add up (`1m30s`). A bare number is rejected:
/// the unit is always explicit.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(xcore_manifest::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(xcore_manifest::parse_duration("10").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. `10s`, `250ms` or `1m30s`".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration `{input}`: expected a number at `{rest}`; write e.g. `10s`"
            ));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration `{input}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let term = match unit {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3_600).map(Duration::from_secs),
            "d" => value.checked_mul(86_400).map(Duration::from_secs),
            "" => {
                return Err(format!(
                    "invalid duration `{input}`: `{value}` has no unit; use ms, s, m, h or d"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{input}`: unknown unit `{other}`; use ms, s, m, h or d"
                ));
            }
        };
        total = term
            .and_then(|t| total.checked_add(t))
            .ok_or_else(|| format!("invalid duration `{input}`: too large"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["", "10", "s", "10x", "1.5s", "-1s", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
