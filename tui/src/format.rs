//! Numbers to short, unit-suffixed text for the screen: watts, joules, grams of CO₂,
//! durations and sparklines. Pure functions, tested with tables.

/// About three significant digits: `8.50`, `12.3`, `850`.
fn sig3(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude < 9.995 {
        format!("{value:.2}")
    } else if magnitude < 99.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// `850 mW`, `12.3 W`, `1.20 kW`.
pub fn format_watts(watts: f64) -> String {
    match watts.abs() {
        w if !w.is_finite() => "-".to_string(),
        0.0 => "0 W".to_string(),
        w if w < 0.9995 => format!("{} mW", sig3(watts * 1e3)),
        w if w < 999.5 => format!("{} W", sig3(watts)),
        w if w < 999_500.0 => format!("{} kW", sig3(watts / 1e3)),
        _ => format!("{} MW", sig3(watts / 1e6)),
    }
}

/// `0.50 J`, `12.3 J`, `4.56 kJ`, `7.89 MJ`.
pub fn format_joules(joules: f64) -> String {
    match joules.abs() {
        j if !j.is_finite() => "-".to_string(),
        0.0 => "0 J".to_string(),
        j if j < 999.5 => format!("{} J", sig3(joules)),
        j if j < 999_500.0 => format!("{} kJ", sig3(joules / 1e3)),
        j if j < 999_500_000.0 => format!("{} MJ", sig3(joules / 1e6)),
        _ => format!("{} GJ", sig3(joules / 1e9)),
    }
}

/// `0.42 mg`, `850 mg`, `12.3 g`, `1.20 kg`, `3.40 t`.
pub fn format_gco2(grams: f64) -> String {
    match grams.abs() {
        g if !g.is_finite() => "-".to_string(),
        0.0 => "0 g".to_string(),
        g if g < 0.9995 => format!("{} mg", sig3(grams * 1e3)),
        g if g < 999.5 => format!("{} g", sig3(grams)),
        g if g < 999_500.0 => format!("{} kg", sig3(grams / 1e3)),
        _ => format!("{} t", sig3(grams / 1e6)),
    }
}

/// `45s`, `12m05s`, `3h04m`, `2d03h`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".to_string();
    }
    let secs = seconds.round() as u64;
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The refresh interval as the header shows it: `0.5 s`, `2 s`.
pub fn format_refresh(seconds: f64) -> String {
    if (seconds - seconds.round()).abs() < 1e-9 {
        format!("{seconds:.0} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// `12.3` for a percentage; `-` when not finite.
pub fn format_pct(pct: f64) -> String {
    if pct.is_finite() {
        format!("{pct:.1}")
    } else {
        "-".to_string()
    }
}

/// An event rate, about three significant digits: `0.50`, `12.3`, `850`, `1.45k`, `2.10M`.
pub fn format_rate(per_s: f64) -> String {
    match per_s.abs() {
        r if !r.is_finite() => "-".to_string(),
        r if r < 999.5 => sig3(per_s),
        r if r < 999_500.0 => format!("{}k", sig3(per_s / 1e3)),
        _ => format!("{}M", sig3(per_s / 1e6)),
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` values as block characters scaled to their maximum; a zero is a
/// space so that silence reads as silence. Right-aligned: newest at the right.
pub fn sparkline(values: &[f64], width: usize) -> String {
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut out = " ".repeat(width - shown.len());
    for &value in shown {
        if !value.is_finite() || value <= 0.0 || max <= 0.0 {
            out.push(' ');
        } else {
            let level = ((value / max) * (BARS.len() as f64 - 1.0)).round() as usize;
            out.push(BARS[level.min(BARS.len() - 1)]);
        }
    }
    out
}

/// At most `chars` characters of `text`, with `…` when cut.
pub fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    if chars == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(chars - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watts_table() {
        for (watts, text) in [
            (0.0, "0 W"),
            (0.85, "850 mW"),
            (0.0123, "12.3 mW"),
            (1.0, "1.00 W"),
            (12.34, "12.3 W"),
            (123.4, "123 W"),
            (999.0, "999 W"),
            (1200.0, "1.20 kW"),
            (45_600.0, "45.6 kW"),
            (2.5e6, "2.50 MW"),
            (f64::NAN, "-"),
        ] {
            assert_eq!(format_watts(watts), text, "{watts}");
        }
    }

    #[test]
    fn rate_table() {
        for (per_s, text) in [
            (0.0, "0.00"),
            (0.5, "0.50"),
            (12.34, "12.3"),
            (850.0, "850"),
            (1450.0, "1.45k"),
            (2_100_000.0, "2.10M"),
            (f64::INFINITY, "-"),
        ] {
            assert_eq!(format_rate(per_s), text, "{per_s}");
        }
    }

    #[test]
    fn joules_table() {
        for (joules, text) in [
            (0.0, "0 J"),
            (0.5, "0.50 J"),
            (12.34, "12.3 J"),
            (999.0, "999 J"),
            (4560.0, "4.56 kJ"),
            (7.89e6, "7.89 MJ"),
            (3.2e9, "3.20 GJ"),
            (f64::INFINITY, "-"),
        ] {
            assert_eq!(format_joules(joules), text, "{joules}");
        }
    }

    #[test]
    fn gco2_table() {
        for (grams, text) in [
            (0.0, "0 g"),
            (0.000_42, "0.42 mg"),
            (0.85, "850 mg"),
            (12.34, "12.3 g"),
            (1200.0, "1.20 kg"),
            (3.4e6, "3.40 t"),
        ] {
            assert_eq!(format_gco2(grams), text, "{grams}");
        }
    }

    #[test]
    fn duration_table() {
        for (secs, text) in [
            (0.0, "0s"),
            (45.0, "45s"),
            (725.0, "12m05s"),
            (11_040.0, "3h04m"),
            (183_600.0, "2d03h"),
            (-1.0, "-"),
        ] {
            assert_eq!(format_duration(secs), text, "{secs}");
        }
    }

    #[test]
    fn refresh_and_pct_table() {
        for (secs, text) in [(0.5, "0.5 s"), (1.0, "1 s"), (10.0, "10 s"), (1.5, "1.5 s")] {
            assert_eq!(format_refresh(secs), text);
        }
        for (pct, text) in [(0.0, "0.0"), (12.345, "12.3"), (f64::NAN, "-")] {
            assert_eq!(format_pct(pct), text);
        }
    }

    #[test]
    fn sparkline_table() {
        for (values, width, text) in [
            (vec![], 3, "   "),
            (vec![0.0, 0.0], 2, "  "),
            (vec![1.0, 2.0, 4.0, 8.0], 4, "▂▃▅█"),
            (vec![1.0, 2.0, 4.0, 8.0], 2, "▅█"),
            (vec![8.0], 3, "  █"),
            (vec![5.0, 0.0, 5.0], 3, "█ █"),
        ] {
            assert_eq!(sparkline(&values, width), text, "{values:?}");
        }
    }

    #[test]
    fn truncate_table() {
        for (text, n, out) in [
            ("python", 10, "python"),
            ("python", 4, "pyt…"),
            ("ab", 0, ""),
        ] {
            assert_eq!(truncate(text, n), out);
        }
    }
}
