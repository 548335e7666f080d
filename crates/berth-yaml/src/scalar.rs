//! Plain scalars read with YAML 1.2's core schema: `true` is a boolean, `0x10` a number, `yes`
//! a string. Quoted scalars are always strings and never come here.

/// A plain scalar read with YAML 1.2's core schema.
pub enum Plain {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

pub fn resolve(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Plain::Int(i);
    }
    match parse_float(text) {
        Some(f) => Plain::Float(f),
        None => Plain::Str,
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) || digits.len() > 30 {
        return None;
    }
    let value = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -value } else { value })
}

fn parse_float(text: &str) -> Option<f64> {
    let body = text.trim_start_matches(['-', '+']);
    let ok = body.chars().any(|c| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && text.len() - body.len() <= 1;
    ok.then(|| text.parse::<f64>().ok())
        .flatten()
        .filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_core_schema() {
        assert!(matches!(resolve("~"), Plain::Null));
        assert!(matches!(resolve("True"), Plain::Bool(true)));
        assert!(matches!(resolve("yes"), Plain::Str));
        assert!(matches!(resolve("-0o17"), Plain::Int(-15)));
        assert!(matches!(resolve("0x1F"), Plain::Int(31)));
        assert!(matches!(resolve("1.5e3"), Plain::Float(f) if f == 1500.0));
        assert!(matches!(resolve("1.2.3"), Plain::Str));
        assert!(matches!(resolve("inf"), Plain::Str));
        assert!(matches!(resolve("--1"), Plain::Str));
        assert!(matches!(resolve("12:30"), Plain::Str));
    }
}
