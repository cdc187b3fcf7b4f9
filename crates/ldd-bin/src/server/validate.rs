//! Checks on user-supplied text, shared by the original endpoints and the v1 API. They run
//! before anything reaches a database or Kafka; sources escape identifiers on top of this.

use ldd_core::dataset::MAX_NAME_CHARS;

use super::error::{ApiError, ApiResult};

/// [`ldd_core::text::check_text`] as an API error.
pub(crate) fn check_text(name: &str, value: &str, max: usize) -> ApiResult<()> {
    ldd_core::text::check_text(name, value, max)
        .map_err(|e| ApiError::from_core("checking the request", e))
}

/// Checks each optional text parameter that is given: empty counts as absent (Go's
/// `c.Query` gives "" for both), anything else must pass [`check_text`] with [`MAX_NAME_CHARS`].
/// The original endpoints check all of them up front, also those a connection's kind
/// ignores, so that what they accept is what their OpenAPI schema says.
pub(crate) fn check_given_texts(params: &[(&str, &Option<String>)]) -> ApiResult<()> {
    for (name, value) in params {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            check_text(name, value, MAX_NAME_CHARS)?;
        }
    }
    Ok(())
}

/// Names that appear in URLs and logs (connection and export ids): 1-128 of
/// `A-Z a-z 0-9 . _ - : @`, not starting with `.`.
pub(crate) fn check_identifier(name: &str, value: &str) -> ApiResult<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "`{name}` `{}` is not a valid name: use 1-128 of A-Z a-z 0-9 . _ - : @ (not starting with `.`)",
            truncate(value, 64).escape_debug()
        )))
    }
}

/// Bootstrap servers: `host:port[,host:port...]`.
pub(crate) fn check_brokers(name: &str, value: &str) -> ApiResult<()> {
    check_text(name, value, 2048)?;
    let bad = || {
        ApiError::BadRequest(format!(
            "`{name}` `{}` is not a broker list; give host:port[,host:port...]",
            truncate(value, 64).escape_debug()
        ))
    };
    for broker in value.split(',').map(str::trim) {
        let (host, port) = broker.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
            });
        if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad());
        }
    }
    Ok(())
}

/// Kafka's topic rule, as a 400 that says how to fix it.
pub(crate) fn check_topic(name: &str, value: &str) -> ApiResult<()> {
    ldd_sink_kafka::config::validate_topic_name(value).map_err(|_| {
        ApiError::BadRequest(format!(
            "`{name}` `{}` is not a valid Kafka topic name; use 1-249 of a-z A-Z 0-9 . _ -",
            truncate(value, 64).escape_debug()
        ))
    })
}

/// Go's `strconv.ParseBool`, which the original used for flags such as `drop_last`.
pub(crate) fn parse_bool(name: &str, value: &str) -> ApiResult<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::BadRequest(format!(
            "`{name}` must be true or false, got `{}`",
            truncate(value, 32).escape_debug()
        ))),
    }
}

/// At most `max` characters of `text`.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_rejected() {
        assert!(check_text("table", "cpu\0", 10).is_err());
        assert!(check_text("table", "a\nb", 10).is_err());
        assert!(check_text("table", "", 10).is_err());
        assert!(check_text("table", &"x".repeat(11), 10).is_err());
        check_text("table", "cpu\"; DROP x", 100).unwrap();
        assert!(check_identifier("id", "../x").is_err());
        assert!(check_identifier("id", "a/b").is_err());
        check_identifier("id", "influx-prod_1").unwrap();
    }

    #[test]
    fn brokers_and_bools() {
        check_brokers("b", "127.0.0.1:9092,kafka-2:9093").unwrap();
        assert!(check_brokers("b", "localhost").is_err());
        assert!(check_brokers("b", "h:0").is_err());
        assert!(check_brokers("b", "h:1;rm").is_err());
        assert!(parse_bool("drop_last", "F").is_ok_and(|b| !b));
        assert!(parse_bool("drop_last", "yes").is_err());
        assert_eq!(truncate("héllo", 2), "hé");
    }
}
