//! What to export: the dataset description shared by every source.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod builder;

pub use builder::{DatasetSpecBuilder, TagRule, TimeBound, MAX_NAME_CHARS};

/// A dataset: where the records live and which of them to take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Name of a registered connection, when the dataset is resolved through a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Database (MongoDB, InfluxDB 1.x) or bucket (InfluxDB 2.x).
    pub database: String,
    /// Collection (MongoDB) or measurement (InfluxDB).
    pub table: String,
    /// Equality filters on tags or fields; a record must match all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FieldEquals>,
    /// The field holding each record's time (MongoDB; InfluxDB always uses `time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_field: Option<String>,
    /// Only records in this time range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Only these fields (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Vec<String>>,
}

impl DatasetSpec {
    /// A dataset of a whole table.
    pub fn new(database: impl Into<String>, table: impl Into<String>) -> Self {
        DatasetSpec {
            database: database.into(),
            table: table.into(),
            ..Default::default()
        }
    }

    /// A builder that checks every part the way all of ldd's front ends do; see
    /// [`DatasetSpecBuilder`].
    pub fn builder(database: impl Into<String>, table: impl Into<String>) -> DatasetSpecBuilder {
        DatasetSpecBuilder::new(database, table)
    }

    /// `database:table`, the name the original API shows.
    pub fn display_name(&self) -> String {
        format!("{}:{}", self.database, self.table)
    }

    /// Checks what can be checked without I/O.
    pub fn validate(&self) -> Result<()> {
        if self.database.is_empty() {
            return Err(Error::InvalidInput(
                "dataset database (or bucket) is empty; name the database to export".into(),
            ));
        }
        if self.table.is_empty() {
            return Err(Error::InvalidInput(
                "dataset table (collection or measurement) is empty; name the table to export"
                    .into(),
            ));
        }
        for filter in &self.filters {
            if filter.field.is_empty() {
                return Err(Error::InvalidInput(
                    "a filter has an empty field name; give both tag_key and tag_value".into(),
                ));
            }
        }
        if let Some(range) = &self.time_range {
            range.validate()?;
        }
        if let Some(fields) = &self.projection {
            if fields.iter().any(String::is_empty) {
                return Err(Error::InvalidInput(
                    "the projection names an empty field; remove it".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `field == value`: the original system's tag filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldEquals {
    /// Tag or field name.
    pub field: String,
    /// The value it must have (compared as text).
    pub value: String,
}

/// A half-open time range `[start, end)` in nanoseconds since the epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// First instant included; unbounded when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<i64>,
    /// First instant excluded; unbounded when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<i64>,
}

impl TimeRange {
    /// Whether the instant lies in the range.
    pub fn contains(&self, nanos: i64) -> bool {
        self.start_ns.is_none_or(|s| nanos >= s) && self.end_ns.is_none_or(|e| nanos < e)
    }

    /// Rejects a range whose end is not after its start.
    pub fn validate(&self) -> Result<()> {
        if let (Some(s), Some(e)) = (self.start_ns, self.end_ns) {
            if e <= s {
                return Err(Error::InvalidInput(format!(
                    "time range end ({}) must be after its start ({})",
                    crate::Value::format_timestamp(e),
                    crate::Value::format_timestamp(s)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_fix() {
        let err = DatasetSpec::new("", "cpu").validate().unwrap_err();
        assert!(err.to_string().contains("name the database"));
        let mut spec = DatasetSpec::new("db", "cpu");
        spec.time_range = Some(TimeRange {
            start_ns: Some(10),
            end_ns: Some(10),
        });
        assert!(spec.validate().unwrap_err().to_string().contains("after"));
        spec.time_range = Some(TimeRange {
            start_ns: Some(10),
            end_ns: Some(11),
        });
        spec.validate().unwrap();
    }

    #[test]
    fn time_range_is_half_open() {
        let r = TimeRange {
            start_ns: Some(10),
            end_ns: Some(20),
        };
        assert!(r.contains(10) && r.contains(19));
        assert!(!r.contains(20) && !r.contains(9));
        assert!(TimeRange::default().contains(i64::MIN));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<DatasetSpec>(r#"{"database":"a","table":"b","tabel":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("tabel"));
    }
}
