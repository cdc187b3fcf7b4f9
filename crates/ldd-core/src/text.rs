//! The one check on user-supplied names and values (database, table, tag, URL, token...):
//! shared by the dataset builder, the sources' configurations and the server, so the same
//! text gets the same answer everywhere.
//!
//! ```
//! use ldd_core::text::{check_text, check_text_or_empty};
//!
//! assert!(check_text("table", "cpu", 512).is_ok());
//! assert!(check_text("table", "", 512).unwrap_err().to_string().contains("is empty"));
//! assert!(check_text_or_empty("tag_value", "", 512).is_ok());
//! assert!(check_text_or_empty("tag_value", "a\nb", 512).is_err());
//! ```

use crate::error::{Error, Result};

/// Rejects empty text, text longer than `max` characters, and control characters; the
/// message names `name` and says what to fix.
pub fn check_text(name: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidInput(format!(
            "`{name}` is empty; give a value"
        )));
    }
    check_text_or_empty(name, value, max)
}

/// [`check_text`], but empty text passes.
pub fn check_text_or_empty(name: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::InvalidInput(format!(
            "`{name}` is longer than {max} characters; shorten it"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "`{name}` contains control characters (e.g. a newline or NUL); remove them"
        )));
    }
    Ok(())
}
