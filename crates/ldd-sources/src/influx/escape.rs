//! Quoting of user-given names and values for InfluxQL and Flux.
//!
//! Every database, measurement, tag, field and value that reaches a query goes through one
//! of these functions; none is formatted into query text raw.
//!
//! - InfluxQL identifiers are double-quoted with `\` and `"` escaped, InfluxQL string
//!   literals single-quoted with `\` and `'` escaped. A newline is written as the `\n`
//!   escape both understand (a raw newline ends a literal with an error), as InfluxDB's own
//!   `QuoteIdent`/`QuoteString` do.
//! - Flux string literals are double-quoted with `\`, `"` and the interpolation opener `${`
//!   escaped, and newline/carriage return written as `\n`/`\r`.
//! - A NUL character is rejected everywhere: no InfluxDB name or value can hold one.

use crate::error::{Error, Result};

fn reject_nul(text: &str, what: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "{what} {text:?} contains a NUL character, which InfluxDB cannot store; remove it"
        )));
    }
    Ok(())
}

/// Quotes an InfluxQL identifier (database, measurement, tag or field name):
/// `my "db"` becomes `"my \"db\""`.
///
/// ```
/// use ldd_sources::influx::escape::influxql_ident;
/// assert_eq!(influxql_ident(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
/// ```
pub fn influxql_ident(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::InvalidInput(
            "an InfluxDB name (database, measurement, tag or field) is empty; give the name".into(),
        ));
    }
    reject_nul(name, "the InfluxDB name")?;
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// Quotes an InfluxQL string literal (a tag value): `it's` becomes `'it\'s'`.
///
/// ```
/// use ldd_sources::influx::escape::influxql_string;
/// assert_eq!(influxql_string("'; DROP MEASUREMENT x; --").unwrap(),
///     r"'\'; DROP MEASUREMENT x; --'");
/// ```
pub fn influxql_string(value: &str) -> Result<String> {
    reject_nul(value, "the InfluxQL string")?;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// Quotes a Flux string literal (bucket, measurement, tag key or value):
/// `") |> drop(` becomes `"\") |> drop("`, and `${x}` becomes `"\${x}"`.
///
/// ```
/// use ldd_sources::influx::escape::flux_string;
/// assert_eq!(flux_string(r#"") |> drop("#).unwrap(), r#""\") |> drop(""#);
/// assert_eq!(flux_string("${token}").unwrap(), r#""\${token}""#);
/// ```
pub fn flux_string(value: &str) -> Result<String> {
    reject_nul(value, "the Flux string")?;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an InfluxQL quoted literal back the way InfluxDB's scanner does, returning the
    /// value and the rest of the text after the closing quote.
    fn unquote_influxql(text: &str) -> (String, &str) {
        let mut chars = text.char_indices();
        let (_, quote) = chars.next().unwrap();
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => return (out, &text[i + 1..]),
                '\n' => panic!("raw newline in literal"),
                '\\' => match chars.next().unwrap().1 {
                    'n' => out.push('\n'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    other => panic!("bad escape \\{other}"),
                },
                c => out.push(c),
            }
        }
        panic!("unterminated literal: {text}")
    }

    /// Reads a Flux string literal back, returning the value and the rest.
    fn unquote_flux(text: &str) -> (String, &str) {
        let mut chars = text.char_indices().peekable();
        assert_eq!(chars.next().unwrap().1, '"');
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (out, &text[i + 1..]),
                '$' if chars.peek().map(|p| p.1) == Some('{') => panic!("interpolation"),
                '\\' => match chars.next().unwrap().1 {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '$' => out.push('$'),
                    other => panic!("bad escape \\{other}"),
                },
                c => out.push(c),
            }
        }
        panic!("unterminated literal: {text}")
    }

    const HOSTILE: &[&str] = &[
        "plain",
        "",
        "with space",
        "double\"quote",
        "single'quote",
        "back\\slash",
        "trailing\\",
        "\\\"",
        "\\'",
        "new\nline",
        "cr\rlf\n",
        "\") |> drop(columns: [\"_value\"]) |> yield(name: \"x",
        "'; DROP MEASUREMENT x; --",
        "\"; DROP DATABASE x; --",
        "${secrets.get(key: \"k\")}",
        "$ {not}",
        "$",
        "ünïcødé ✓",
    ];

    #[test]
    fn influxql_literals_round_trip_and_end_where_they_should() {
        for value in HOSTILE {
            let quoted = influxql_string(value).unwrap();
            let (back, rest) = unquote_influxql(&quoted);
            assert_eq!(&back, value);
            assert_eq!(rest, "", "{quoted} ends early");
            assert!(!quoted.contains('\n'));
            if value.is_empty() {
                continue;
            }
            let quoted = influxql_ident(value).unwrap();
            let (back, rest) = unquote_influxql(&quoted);
            assert_eq!(&back, value);
            assert_eq!(rest, "", "{quoted} ends early");
        }
    }

    #[test]
    fn flux_literals_round_trip_and_never_interpolate() {
        for value in HOSTILE {
            let quoted = flux_string(value).unwrap();
            let (back, rest) = unquote_flux(&quoted);
            assert_eq!(&back, value);
            assert_eq!(rest, "", "{quoted} ends early");
        }
    }

    #[test]
    fn known_shapes() {
        assert_eq!(influxql_ident("cpu").unwrap(), "\"cpu\"");
        assert_eq!(influxql_ident("a\"b").unwrap(), r#""a\"b""#);
        assert_eq!(influxql_string("a'b\\").unwrap(), r"'a\'b\\'");
        assert_eq!(influxql_string("a\nb").unwrap(), r"'a\nb'");
        assert_eq!(flux_string("a\"b${c}$d").unwrap(), r#""a\"b\${c}$d""#);
    }

    #[test]
    fn nul_and_empty_names_are_rejected_clearly() {
        let err = influxql_ident("a\0b").unwrap_err().to_string();
        assert!(err.contains("NUL"), "{err}");
        assert!(influxql_string("\0").is_err());
        assert!(flux_string("x\0").is_err());
        let err = influxql_ident("").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        assert_eq!(influxql_string("").unwrap(), "''");
    }
}
