//! One way from loosely given parts (CLI flags, query parameters, JSON bodies) to a checked
//! [`DatasetSpec`]. Every front end of ldd builds its specs here, so the same text gets the
//! same answer everywhere.
//!
//! The rules, in one place:
//! - names (database, table, tag key and value, time field, projected fields) are 1 to
//!   [`MAX_NAME_CHARS`] characters without control characters; only a value given with
//!   [`DatasetSpecBuilder::filter`] (a JSON body's filter) may be empty;
//! - a tag filter needs both its key and its value. [`TagRule::BothOrNeither`] (the CLI and
//!   the v1 API) rejects one without the other; [`TagRule::IgnoreIncomplete`] (the original
//!   endpoints, whose Go server ignored a half-given filter) drops it;
//! - a time bound is RFC 3339 text or nanoseconds since the epoch, not both; the end must
//!   be after the start.
//!
//! ```
//! use ldd_core::{DatasetSpec, TagRule, TimeBound};
//!
//! let spec = DatasetSpec::builder("iot", "cpu")
//!     .tag(Some("device".into()), Some("dev-1".into()), TagRule::BothOrNeither)
//!     .start(TimeBound::Text("2024-01-01T00:00:00Z".into()))
//!     .build()
//!     .unwrap();
//! assert_eq!(spec.filters[0].value, "dev-1");
//! assert_eq!(spec.time_range.unwrap().start_ns, Some(1_704_067_200_000_000_000));
//!
//! let err = DatasetSpec::builder("iot", "cpu")
//!     .tag(Some("device".into()), None, TagRule::BothOrNeither)
//!     .build()
//!     .unwrap_err();
//! assert!(err.to_string().contains("together"));
//! ```

use super::{DatasetSpec, FieldEquals, TimeRange};
use crate::error::{Error, Result};
use crate::text::{check_text, check_text_or_empty};
use crate::Value;

/// Longest name accepted (database, table, tag, field), in characters.
pub const MAX_NAME_CHARS: usize = 512;

/// What to do with a tag filter whose key or value is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagRule {
    /// Reject it: give both or neither (the CLI, the v1 API).
    BothOrNeither,
    /// Drop it, as the original server did (its endpoints keep that behaviour).
    IgnoreIncomplete,
}

/// One end of a time range as it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeBound {
    /// RFC 3339 text, e.g. `2024-01-01T00:00:00Z`.
    Text(String),
    /// Nanoseconds since the epoch.
    Nanos(i64),
    /// Both forms were given: an error when built.
    Both,
}

impl TimeBound {
    /// The bound of an optional text and an optional nanosecond value.
    pub fn of(text: Option<String>, nanos: Option<i64>) -> Option<TimeBound> {
        match (text, nanos) {
            (Some(_), Some(_)) => Some(TimeBound::Both),
            (Some(text), None) => Some(TimeBound::Text(text)),
            (None, Some(ns)) => Some(TimeBound::Nanos(ns)),
            (None, None) => None,
        }
    }
}

/// Builds a checked [`DatasetSpec`]; see the [module docs](self) for the rules.
#[derive(Debug, Clone)]
#[must_use]
pub struct DatasetSpecBuilder {
    prefix: String,
    spec: DatasetSpec,
    incomplete_tag: Option<&'static str>,
    /// Filters given as `tag_key`/`tag_value` parameters, whose value must not be empty.
    tag_filters: usize,
    start: Option<TimeBound>,
    end: Option<TimeBound>,
}

impl DatasetSpecBuilder {
    /// A builder for a whole table.
    pub fn new(database: impl Into<String>, table: impl Into<String>) -> Self {
        DatasetSpecBuilder {
            prefix: String::new(),
            spec: DatasetSpec::new(database, table),
            incomplete_tag: None,
            tag_filters: 0,
            start: None,
            end: None,
        }
    }

    /// Names each part in messages as `<prefix><part>` (`dataset.` for a JSON body, `--`
    /// for flags), so the message points at what the caller wrote.
    pub fn named_with(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The registered connection the dataset belongs to.
    pub fn connection(mut self, id: impl Into<String>) -> Self {
        self.spec.connection = Some(id.into());
        self
    }

    /// A tag filter from an optional key and value, under `rule`.
    pub fn tag(mut self, key: Option<String>, value: Option<String>, rule: TagRule) -> Self {
        match (key, value) {
            (Some(field), Some(value)) => {
                self.spec.filters.insert(0, FieldEquals { field, value });
                self.tag_filters += 1;
            }
            (None, None) => {}
            (key, _) => {
                if rule == TagRule::BothOrNeither {
                    self.incomplete_tag = Some(if key.is_some() {
                        "tag_value"
                    } else {
                        "tag_key"
                    });
                }
            }
        }
        self
    }

    /// An equality filter on a tag or field.
    pub fn filter(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.filters.push(FieldEquals {
            field: field.into(),
            value: value.into(),
        });
        self
    }

    /// The field holding each record's time (MongoDB).
    pub fn time_field(mut self, field: Option<String>) -> Self {
        self.spec.time_field = field;
        self
    }

    /// Only records at or after this instant.
    pub fn start(mut self, bound: impl Into<Option<TimeBound>>) -> Self {
        self.start = bound.into();
        self
    }

    /// Only records before this instant.
    pub fn end(mut self, bound: impl Into<Option<TimeBound>>) -> Self {
        self.end = bound.into();
        self
    }

    /// Only these fields.
    pub fn projection(mut self, fields: Option<Vec<String>>) -> Self {
        self.spec.projection = fields;
        self
    }

    /// The checked spec, or a message naming the part to fix.
    pub fn build(self) -> Result<DatasetSpec> {
        let name = |part: &str| format!("{}{part}", self.prefix);
        if let Some(missing) = self.incomplete_tag {
            return Err(Error::InvalidInput(format!(
                "give {} and {} together, or neither (`{}` is missing)",
                name("tag_key"),
                name("tag_value"),
                name(missing)
            )));
        }
        let spec = &self.spec;
        check_name(&name("database"), &spec.database)?;
        check_name(&name("table"), &spec.table)?;
        for (i, filter) in spec.filters.iter().enumerate() {
            check_name(&name("tag_key"), &filter.field)?;
            if i < self.tag_filters {
                check_name(&name("tag_value"), &filter.value)?;
            } else {
                check_value(&name("tag_value"), &filter.value)?;
            }
        }
        if let Some(field) = &spec.time_field {
            check_name(&name("time_field"), field)?;
        }
        for field in spec.projection.iter().flatten() {
            check_name(&name("fields"), field)?;
        }
        let start_ns = instant(&name("start"), self.start.as_ref())?;
        let end_ns = instant(&name("end"), self.end.as_ref())?;
        let mut spec = self.spec;
        spec.time_range =
            (start_ns.is_some() || end_ns.is_some()).then_some(TimeRange { start_ns, end_ns });
        spec.validate()?;
        Ok(spec)
    }
}

fn instant(name: &str, bound: Option<&TimeBound>) -> Result<Option<i64>> {
    match bound {
        None => Ok(None),
        Some(TimeBound::Nanos(ns)) => Ok(Some(*ns)),
        Some(TimeBound::Both) => Err(Error::InvalidInput(format!(
            "`{name}` is given both as text and as `{name}_ns`; keep one"
        ))),
        Some(TimeBound::Text(text)) => Value::parse_timestamp(text).map(Some).ok_or_else(|| {
            Error::InvalidInput(format!(
                "`{name}` `{}` is not an RFC 3339 time; write e.g. 2024-01-01T00:00:00Z",
                text.chars().take(64).collect::<String>().escape_debug()
            ))
        }),
    }
}

fn check_name(name: &str, value: &str) -> Result<()> {
    check_text(name, value, MAX_NAME_CHARS)
}

fn check_value(name: &str, value: &str) -> Result<()> {
    check_text_or_empty(name, value, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: DatasetSpecBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn tag_rules() {
        let half = |rule| DatasetSpec::builder("d", "t").tag(Some("k".into()), None, rule);
        assert!(err(half(TagRule::BothOrNeither)).contains("`tag_value` is missing"));
        assert!(half(TagRule::IgnoreIncomplete)
            .build()
            .unwrap()
            .filters
            .is_empty());
    }

    #[test]
    fn names_and_prefixes_in_messages() {
        let b = DatasetSpec::builder("", "t").named_with("dataset.");
        assert!(err(b).contains("`dataset.database` is empty"));
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(err(DatasetSpec::builder("d", long)).contains("longer than 512"));
        assert!(err(DatasetSpec::builder("d", "t").filter("k", "a\nb")).contains("control"));
        DatasetSpec::builder("d", "t")
            .filter("k", "")
            .build()
            .unwrap();
        let b = DatasetSpec::builder("d", "t").projection(Some(vec![String::new()]));
        assert!(err(b).contains("`fields` is empty"));
    }

    #[test]
    fn time_bounds() {
        let b = DatasetSpec::builder("d", "t").start(TimeBound::Text("yesterday".into()));
        assert!(err(b.named_with("--")).contains("`--start` `yesterday` is not an RFC 3339"));
        let b = DatasetSpec::builder("d", "t").end(TimeBound::of(Some("x".into()), Some(1)));
        assert!(err(b).contains("keep one"));
        let b = DatasetSpec::builder("d", "t")
            .start(TimeBound::Nanos(10))
            .end(TimeBound::Nanos(10));
        assert!(err(b).contains("after"));
        let spec = DatasetSpec::builder("d", "t")
            .connection("c")
            .end(TimeBound::Nanos(10))
            .build()
            .unwrap();
        assert_eq!(spec.connection.as_deref(), Some("c"));
        assert_eq!(
            spec.time_range,
            Some(TimeRange {
                start_ns: None,
                end_ns: Some(10)
            })
        );
        assert_eq!(TimeBound::of(None, None), None);
    }
}
