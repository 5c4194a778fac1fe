//! Values in human units, for reports and explanations.

use super::ProfileKind;

/// A value in human units: nanoseconds as time, bytes with binary prefixes, counts plainly.
pub fn format_value(v: f64, unit: &str) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    let body = match unit {
        "nanoseconds" => {
            if a >= 1e9 {
                format!("{:.2}s", a / 1e9)
            } else if a >= 1e6 {
                format!("{:.1}ms", a / 1e6)
            } else if a >= 1e3 {
                format!("{:.1}us", a / 1e3)
            } else {
                format!("{a:.0}ns")
            }
        }
        "bytes" => {
            const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
            let mut x = a;
            let mut i = 0;
            while x >= 1024.0 && i + 1 < UNITS.len() {
                x /= 1024.0;
                i += 1;
            }
            if i == 0 {
                format!("{x:.0}B")
            } else {
                format!("{x:.1}{}", UNITS[i])
            }
        }
        _ => {
            if a >= 1e6 {
                format!("{:.2}M", a / 1e6)
            } else if a >= 1e4 {
                format!("{:.1}k", a / 1e3)
            } else if a.fract() == 0.0 {
                format!("{a:.0}")
            } else {
                format!("{a:.1}")
            }
        }
    };
    format!("{sign}{body}")
}

/// A profile kind and sample type in words, the sample type left out where it repeats the kind:
/// `heap inuse_space`, but `goroutine`, not `goroutine goroutine`.
pub fn kind_and_sample(kind: ProfileKind, sample_type: &str) -> String {
    if sample_type == kind.name() {
        kind.name().to_owned()
    } else {
        format!("{kind} {sample_type}")
    }
}

/// A growth per minute in human units, signed: `+24.0MiB`, `+1.2k` (goroutines).
pub fn format_growth(per_minute: f64, sample_type: &str) -> String {
    let unit = if sample_type.ends_with("_space") {
        "bytes"
    } else {
        "count"
    };
    let v = format_value(per_minute, unit);
    if per_minute >= 0.0 {
        format!("+{v}")
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_reads_in_units_and_kinds_are_not_repeated() {
        assert_eq!(
            format_growth(25.0 * 1024.0 * 1024.0, "inuse_space"),
            "+25.0MiB"
        );
        assert_eq!(format_growth(1200.0, "goroutine"), "+1200");
        assert_eq!(
            kind_and_sample(ProfileKind::Goroutine, "goroutine"),
            "goroutine"
        );
        assert_eq!(
            kind_and_sample(ProfileKind::Heap, "inuse_space"),
            "heap inuse_space"
        );
    }
}
