//! Percentages as the policy file writes them: `20%` or the fraction `0.2`, both meaning 0.2.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A number or string as found in the YAML, before it is read as a percentage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawNumber {
    /// A YAML number (int or float).
    Number(f64),
    /// A YAML string, such as `20%` or `'0.2'`.
    Text(String),
    /// Anything else (bool, null), described for the error message.
    Other(&'static str),
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as 20% or 0.2")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNumber, E> {
                Ok(RawNumber::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNumber, E> {
                Ok(RawNumber::Number(v as f64))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawNumber, E> {
                Ok(RawNumber::Number(v as f64))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawNumber, E> {
                Ok(RawNumber::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNumber, E> {
                Ok(RawNumber::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNumber, E> {
                Ok(RawNumber::Text(v.chars().take(64).collect()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawNumber, E> {
                Ok(RawNumber::Other("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawNumber, E> {
                Ok(RawNumber::Other("an empty value"))
            }
            fn visit_none<E: de::Error>(self) -> Result<RawNumber, E> {
                Ok(RawNumber::Other("an empty value"))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

/// Why a value is not an acceptable percentage: (what is wrong, what was expected).
pub(crate) type PercentError = (String, String);

/// Reads a percentage as a fraction: `20%` and `0.2` both give 0.2 (exactly the same f64).
///
/// A bare number must be a fraction in [0, 1]; percent forms may exceed 100% (callers bound them).
pub(crate) fn parse_fraction(raw: &RawNumber) -> Result<f64, PercentError> {
    const EXPECTED: &str = "a percentage such as 20% or the fraction 0.2";
    match raw {
        RawNumber::Number(v) => bare_fraction(*v, &format_number(*v)),
        RawNumber::Other(what) => Err((format!("{what} is not a percentage"), EXPECTED.into())),
        RawNumber::Text(text) => {
            let text = text.trim();
            if let Some(number) = text.strip_suffix('%') {
                let number = number.trim_end();
                if number.starts_with('-') {
                    return Err((format!("'{text}' is negative"), EXPECTED.into()));
                }
                if !is_plain_decimal(number) {
                    return Err((format!("'{text}' is not a percentage"), EXPECTED.into()));
                }
                // Shift the decimal point textually so that `20%` is exactly the f64 nearest to 0.2.
                match format!("{number}e-2").parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err((format!("'{text}' is not a percentage"), EXPECTED.into())),
                }
            } else if is_plain_decimal(text.strip_prefix('-').unwrap_or(text)) {
                match text.parse::<f64>() {
                    Ok(v) => bare_fraction(v, text),
                    Err(_) => Err((format!("'{text}' is not a percentage"), EXPECTED.into())),
                }
            } else {
                Err((format!("'{text}' is not a percentage"), EXPECTED.into()))
            }
        }
    }
}

fn bare_fraction(v: f64, written: &str) -> Result<f64, PercentError> {
    if !v.is_finite() {
        return Err((
            format!("{written} is not a finite number"),
            "a percentage such as 20% or the fraction 0.2".into(),
        ));
    }
    if v < 0.0 {
        return Err((
            format!("{written} is negative"),
            "a percentage of 0% or more, such as 20% or the fraction 0.2".into(),
        ));
    }
    if v > 1.0 {
        let fraction = format_number(v / 100.0);
        return Err((
            format!("the bare number {written} is more than 1, and bare numbers are fractions"),
            format!("a percent sign or a fraction: write {written}% or {fraction}"),
        ));
    }
    Ok(v)
}

/// Digits with at most one decimal point and at least one digit, no sign or exponent.
fn is_plain_decimal(text: &str) -> bool {
    let mut digits = 0;
    let mut points = 0;
    for c in text.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' => points += 1,
            _ => return false,
        }
    }
    digits > 0 && points <= 1 && text.len() <= 40
}

/// The shortest decimal text of a finite number, without exponent (`0.2`, `20`, `1.5`).
pub(crate) fn format_number(v: f64) -> String {
    format!("{v}")
}

/// A fraction written as a percentage that reads back to exactly the same f64: 0.2 -> `20%`,
/// 0.005 -> `0.5%`, 1.5 -> `150%`.
pub(crate) fn format_percent(v: f64) -> String {
    let text = format_number(v);
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let mut frac: String = frac_part.to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    let (moved, rest) = frac.split_at(2);
    let int = format!("{int_part}{moved}");
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let rest = rest.trim_end_matches('0');
    if rest.is_empty() {
        format!("{int}%")
    } else {
        format!("{int}.{rest}%")
    }
}
