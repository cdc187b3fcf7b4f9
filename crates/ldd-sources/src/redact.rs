//! Keeping the password of a database URL out of logs, messages and answers.
//!
//! ```
//! use ldd_sources::redact::{redact_url, url_password};
//!
//! let url = "mongodb://app:s3cret@db1:27017,db2:27017/iot?tls=true";
//! assert_eq!(url_password(url), Some("s3cret"));
//! assert_eq!(redact_url(url), "mongodb://app:****@db1:27017,db2:27017/iot?tls=true");
//! assert_eq!(redact_url("http://127.0.0.1:8086"), "http://127.0.0.1:8086");
//! ```

/// What a password is shown as.
pub const MASK: &str = "****";

/// Where the userinfo's password is: the byte range within `url`, if the URL carries one
/// (`scheme://user:password@host...`). The authority ends at the first `/`, `?` or `#`;
/// its last `@` ends the userinfo, so a password holding an unescaped `@` is still found.
fn password_range(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// The URL's password, if it carries one.
pub fn url_password(url: &str) -> Option<&str> {
    password_range(url).map(|range| &url[range])
}

/// The URL with its password, if any, replaced by [`MASK`]; everything else unchanged.
pub fn redact_url(url: &str) -> String {
    match password_range(url) {
        Some(range) if !range.is_empty() => {
            format!("{}{MASK}{}", &url[..range.start], &url[range.end..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_is_masked() {
        assert_eq!(
            redact_url("mongodb://u:pw@h:1,h2:2/db?x=1"),
            "mongodb://u:****@h:1,h2:2/db?x=1"
        );
        assert_eq!(redact_url("mongodb://u@h/"), "mongodb://u@h/");
        assert_eq!(redact_url("mongodb://u:@h/"), "mongodb://u:@h/");
        assert_eq!(redact_url("http://h:8086"), "http://h:8086");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn a_password_that_also_appears_elsewhere_is_masked_where_it_is() {
        // Replacing the first occurrence of the password text would mask the scheme and
        // leave the password itself in place.
        let url = "mongodb://mongodb:mongodb@h:27017/mongodb";
        assert_eq!(redact_url(url), "mongodb://mongodb:****@h:27017/mongodb");
        assert_eq!(url_password(url), Some("mongodb"));
    }

    #[test]
    fn awkward_passwords() {
        assert_eq!(redact_url("mongodb://u:p@ss@h/"), "mongodb://u:****@h/");
        assert_eq!(url_password("mongodb://u:p@ss@h/"), Some("p@ss"));
        assert_eq!(redact_url("mongodb://u:a:b@h/"), "mongodb://u:****@h/");
        // An `@` after the authority is not userinfo.
        assert_eq!(redact_url("http://h/path@x"), "http://h/path@x");
        assert_eq!(url_password("http://h/path@x"), None);
    }
}
