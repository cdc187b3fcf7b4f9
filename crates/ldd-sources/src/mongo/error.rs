//! The MongoDB driver's errors as this crate's [`Error`], with what was being done.

use crate::error::Error;

/// A driver error while doing `context`.
pub(super) fn mongo(context: impl Into<String>, source: mongodb::error::Error) -> Error {
    Error::Mongo {
        context: context.into(),
        source,
    }
}
