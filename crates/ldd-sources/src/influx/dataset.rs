//! A dataset resolved against its measurement's schema: which tags and fields it reads,
//! how its filters compare, and how its records are counted. No I/O here.

use ldd_core::{ChunkRange, DatasetSpec, TimeRange, ValueBound};

use super::config::RowShape;
use crate::error::{Error, Result};

/// Oldest instant InfluxDB stores (ns since the epoch).
pub(crate) const MIN_TIME: i64 = i64::MIN + 2;
/// Newest instant InfluxDB stores (ns since the epoch).
pub(crate) const MAX_TIME: i64 = i64::MAX - 1;

/// Names a record always has, whatever the projection.
pub(crate) const TIME: &str = "_time";
/// The measurement column of a record.
pub(crate) const MEASUREMENT: &str = "_measurement";
/// The field-name column of a narrow record.
pub(crate) const FIELD: &str = "_field";
/// The value column of a narrow record.
pub(crate) const VALUE: &str = "_value";

/// Type of a field, as `SHOW FIELD KEYS` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    /// 64-bit float.
    Float,
    /// Signed 64-bit integer.
    Integer,
    /// Unsigned 64-bit integer.
    Unsigned,
    /// Text.
    String,
    /// Boolean.
    Boolean,
    /// Not known (Flux reports types per answer, not per schema).
    Unknown,
}

impl FieldType {
    /// The type of a `SHOW FIELD KEYS` `fieldType`.
    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "float" => FieldType::Float,
            "integer" => FieldType::Integer,
            "unsigned" => FieldType::Unsigned,
            "string" => FieldType::String,
            "boolean" => FieldType::Boolean,
            _ => FieldType::Unknown,
        }
    }
}

/// Tag and field keys of a measurement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Schema {
    /// Tag keys, sorted.
    pub(crate) tags: Vec<String>,
    /// Field keys with their types, sorted by key (first type seen when shards disagree).
    pub(crate) fields: Vec<(String, FieldType)>,
}

impl Schema {
    /// A schema from unsorted keys (duplicates dropped).
    pub(crate) fn new(mut tags: Vec<String>, mut fields: Vec<(String, FieldType)>) -> Self {
        tags.sort();
        tags.dedup();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|b, a| a.0 == b.0);
        Schema { tags, fields }
    }

    /// Whether the measurement has no data at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn field(&self, name: &str) -> Option<FieldType> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }

    fn is_tag(&self, name: &str) -> bool {
        self.tags.binary_search_by(|t| t.as_str().cmp(name)).is_ok()
    }
}

/// A literal a field is compared with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldLiteral {
    /// A float.
    Float(f64),
    /// A signed integer.
    Integer(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A boolean.
    Boolean(bool),
    /// Text.
    String(String),
}

/// One equality filter, resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    /// A tag equals a text.
    Tag {
        /// Tag key.
        key: String,
        /// Value.
        value: String,
    },
    /// A field equals a typed literal (InfluxQL only).
    Field {
        /// Field key.
        key: String,
        /// Value.
        literal: FieldLiteral,
    },
}

/// Which query language a selection is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// InfluxQL over `/query`.
    InfluxQl,
    /// Flux over `/api/v2/query`.
    Flux,
}

/// What a dataset reads, resolved against its schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    /// Database (bucket for Flux).
    pub(crate) database: String,
    /// Measurement.
    pub(crate) measurement: String,
    /// The spec's time range.
    pub(crate) time: TimeRange,
    /// Record shape.
    pub(crate) shape: RowShape,
    /// Filters, in the spec's order.
    pub(crate) filters: Vec<Filter>,
    /// Tag keys of the schema (sorted).
    pub(crate) all_tags: Vec<String>,
    /// Tags written into records (sorted); `None` means every tag a point has.
    pub(crate) tags: Option<Vec<String>>,
    /// Fields queried (sorted): a point is a record (wide) when it has any of them.
    pub(crate) fields: Vec<(String, FieldType)>,
    /// Whether each queried field is written into records (wide shape).
    pub(crate) emit: Vec<bool>,
}

impl Selection {
    /// Resolves `spec` against `schema`. Filters name tags or fields (a name the schema
    /// does not know is rejected, unless the measurement has no data at all); the
    /// projection names tags and/or fields to keep (`_time`, `_measurement`, `_field`,
    /// `_value` are always kept).
    pub(crate) fn new(
        spec: &DatasetSpec,
        schema: &Schema,
        shape: RowShape,
        lang: Lang,
    ) -> Result<Self> {
        validate_spec(spec)?;
        let known = || {
            format!(
                "tags: {}; fields: {}",
                list(schema.tags.iter()),
                list(schema.fields.iter().map(|(n, _)| n))
            )
        };
        let mut filters = Vec::with_capacity(spec.filters.len());
        for f in &spec.filters {
            let filter = if schema.is_tag(&f.field) {
                Filter::Tag {
                    key: f.field.clone(),
                    value: f.value.clone(),
                }
            } else if let Some(ty) = schema.field(&f.field) {
                if lang == Lang::Flux {
                    return Err(Error::Unsupported(format!(
                        "filter on field `{}` of `{}`: Flux reads filter on tags only; \
                         filter on a tag, or use the influxql language",
                        f.field, spec.table
                    )));
                }
                Filter::Field {
                    key: f.field.clone(),
                    literal: field_literal(&f.field, ty, &f.value)?,
                }
            } else if schema.is_empty() {
                Filter::Tag {
                    key: f.field.clone(),
                    value: f.value.clone(),
                }
            } else {
                return Err(Error::InvalidInput(format!(
                    "filter key `{}` is neither a tag nor a field of measurement `{}` ({})",
                    f.field,
                    spec.table,
                    known()
                )));
            };
            filters.push(filter);
        }

        let always = [TIME, MEASUREMENT, FIELD, VALUE];
        let (tags, fields, emit) = match &spec.projection {
            None => (None, schema.fields.clone(), vec![true; schema.fields.len()]),
            Some(names) => {
                let mut tags = Vec::new();
                let mut fields = Vec::new();
                for name in names {
                    if always.contains(&name.as_str()) {
                        continue;
                    }
                    if schema.is_tag(name) {
                        tags.push(name.clone());
                    } else if let Some(ty) = schema.field(name) {
                        fields.push((name.clone(), ty));
                    } else if !schema.is_empty() {
                        return Err(Error::InvalidInput(format!(
                            "the projection names `{name}`, which is neither a tag nor a field \
                             of measurement `{}` ({})",
                            spec.table,
                            known()
                        )));
                    }
                }
                tags.sort();
                tags.dedup();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                fields.dedup_by(|b, a| a.0 == b.0);
                if fields.is_empty() {
                    // Only tags kept: points are still found through their fields.
                    let emit_none = match shape {
                        RowShape::Wide => vec![false; schema.fields.len()],
                        RowShape::Narrow => vec![true; schema.fields.len()],
                    };
                    (Some(tags), schema.fields.clone(), emit_none)
                } else {
                    let n = fields.len();
                    (Some(tags), fields, vec![true; n])
                }
            }
        };
        Ok(Selection {
            database: spec.database.clone(),
            measurement: spec.table.clone(),
            time: spec.time_range.unwrap_or_default(),
            shape,
            filters,
            all_tags: schema.tags.clone(),
            tags,
            fields,
            emit,
        })
    }

    /// Names of the queried fields.
    pub(crate) fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// Whether a tag is written into records.
    pub(crate) fn keeps_tag(&self, tag: &str) -> bool {
        self.tags
            .as_ref()
            .is_none_or(|t| t.iter().any(|k| k == tag))
    }

    /// Tags that the InfluxQL read selects: the projected ones, or all of the schema.
    pub(crate) fn selected_tags(&self) -> &[String] {
        self.tags.as_deref().unwrap_or(&self.all_tags)
    }

    /// `[start, end)` of a read: the spec's time range intersected with `range`;
    /// `None` when the intersection is empty.
    pub(crate) fn bounds(&self, range: &ChunkRange) -> Result<Option<(Option<i64>, Option<i64>)>> {
        let (mut lo, mut hi) = (self.time.start_ns, self.time.end_ns);
        if let ChunkRange::Range { field, start, end } = range {
            if field != TIME && field != "time" {
                return Err(Error::InvalidInput(format!(
                    "InfluxDB ranges are on `{TIME}`, not `{field}`"
                )));
            }
            let bound = |b: &Option<ValueBound>| -> Result<Option<i64>> {
                match b {
                    None => Ok(None),
                    Some(ValueBound::Timestamp(t)) | Some(ValueBound::Int(t)) => Ok(Some(*t)),
                    Some(other) => Err(Error::InvalidInput(format!(
                        "InfluxDB range bounds are timestamps, got {other:?}"
                    ))),
                }
            };
            if let Some(s) = bound(start)? {
                lo = Some(lo.map_or(s, |l| l.max(s)));
            }
            if let Some(e) = bound(end)? {
                hi = Some(hi.map_or(e, |h| h.min(e)));
            }
        }
        if let (Some(l), Some(h)) = (lo, hi) {
            if l >= h {
                return Ok(None);
            }
        }
        Ok(Some((lo, hi)))
    }
}

/// Per-field counts of a selection and what they say about its record count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Count of each queried field (same order as `Selection::fields`).
    pub(crate) per_field: Vec<(String, u64)>,
    /// Records: in wide shape the largest field count (a point is counted through the field
    /// most points have), in narrow shape the sum.
    pub(crate) total: u64,
    /// Wide shape: the field counted in histograms.
    pub(crate) count_field: Option<String>,
    /// Wide shape: fields have different counts, so `total` is exact only when the count
    /// field is in every point (otherwise it is a lower bound).
    pub(crate) sparse: bool,
}

impl Counts {
    /// Derives the record count from per-field counts.
    pub(crate) fn new(shape: RowShape, per_field: Vec<(String, u64)>) -> Self {
        match shape {
            RowShape::Narrow => Counts {
                total: per_field.iter().map(|(_, c)| c).sum(),
                per_field,
                count_field: None,
                sparse: false,
            },
            RowShape::Wide => {
                let best = per_field
                    .iter()
                    .filter(|(_, c)| *c > 0)
                    .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)));
                let total = best.map_or(0, |(_, c)| *c);
                let count_field = best.map(|(n, _)| n.clone());
                let sparse = per_field.iter().any(|(_, c)| *c != total);
                Counts {
                    per_field,
                    total,
                    count_field,
                    sparse,
                }
            }
        }
    }

    /// Fields whose counts make up a histogram: the count field (wide) or every field with
    /// data (narrow, summed).
    pub(crate) fn histogram_fields(&self) -> Vec<String> {
        match &self.count_field {
            Some(f) => vec![f.clone()],
            None => self
                .per_field
                .iter()
                .filter(|(_, c)| *c > 0)
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }
}

/// Checks a spec without I/O (with the message of [`DatasetSpec::validate`]).
pub(crate) fn validate_spec(spec: &DatasetSpec) -> Result<()> {
    spec.validate().map_err(|e| match e {
        ldd_core::Error::InvalidInput(msg) => Error::InvalidInput(msg),
        other => Error::InvalidInput(other.to_string()),
    })
}

fn field_literal(key: &str, ty: FieldType, value: &str) -> Result<FieldLiteral> {
    let bad = |what: &str| {
        Error::InvalidInput(format!(
            "filter on field `{key}` ({what}) cannot match `{value}`; give a {what}"
        ))
    };
    Ok(match ty {
        FieldType::Float => {
            let v: f64 = value.trim().parse().map_err(|_| bad("number"))?;
            if !v.is_finite() {
                return Err(bad("finite number"));
            }
            FieldLiteral::Float(v)
        }
        FieldType::Integer => {
            FieldLiteral::Integer(value.trim().parse().map_err(|_| bad("integer"))?)
        }
        FieldType::Unsigned => {
            FieldLiteral::Unsigned(value.trim().parse().map_err(|_| bad("unsigned integer"))?)
        }
        FieldType::Boolean => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "t" => FieldLiteral::Boolean(true),
            "false" | "f" => FieldLiteral::Boolean(false),
            _ => return Err(bad("boolean (true or false)")),
        },
        FieldType::String | FieldType::Unknown => FieldLiteral::String(value.to_owned()),
    })
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldd_core::FieldEquals;

    fn schema() -> Schema {
        Schema::new(
            vec!["site".into(), "device".into(), "site".into()],
            vec![
                ("temp".into(), FieldType::Float),
                ("seq".into(), FieldType::Integer),
                ("ok".into(), FieldType::Boolean),
                ("temp".into(), FieldType::Integer),
            ],
        )
    }

    fn spec() -> DatasetSpec {
        DatasetSpec::new("db", "m")
    }

    #[test]
    fn schema_is_sorted_and_deduplicated() {
        let s = schema();
        assert_eq!(s.tags, ["device", "site"]);
        let names: Vec<_> = s.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ok", "seq", "temp"]);
        assert_eq!(s.field("temp"), Some(FieldType::Float));
    }

    #[test]
    fn filters_resolve_to_tags_or_typed_fields() {
        let mut spec = spec();
        spec.filters = vec![
            FieldEquals {
                field: "device".into(),
                value: "d'1".into(),
            },
            FieldEquals {
                field: "seq".into(),
                value: "42".into(),
            },
            FieldEquals {
                field: "ok".into(),
                value: "TRUE".into(),
            },
        ];
        let sel = Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl).unwrap();
        assert_eq!(
            sel.filters,
            vec![
                Filter::Tag {
                    key: "device".into(),
                    value: "d'1".into()
                },
                Filter::Field {
                    key: "seq".into(),
                    literal: FieldLiteral::Integer(42)
                },
                Filter::Field {
                    key: "ok".into(),
                    literal: FieldLiteral::Boolean(true)
                },
            ]
        );
        spec.filters = vec![FieldEquals {
            field: "seq".into(),
            value: "x".into(),
        }];
        let err = Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl)
            .unwrap_err()
            .to_string();
        assert!(err.contains("integer"), "{err}");
        spec.filters = vec![FieldEquals {
            field: "nope".into(),
            value: "x".into(),
        }];
        let err = Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("neither a tag nor a field") && err.contains("device, site"),
            "{err}"
        );
        // Flux filters on tags only.
        spec.filters = vec![FieldEquals {
            field: "seq".into(),
            value: "1".into(),
        }];
        let err = Selection::new(&spec, &schema(), RowShape::Wide, Lang::Flux).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        // An empty measurement accepts any filter (and finds nothing).
        spec.filters = vec![FieldEquals {
            field: "nope".into(),
            value: "x".into(),
        }];
        Selection::new(&spec, &Schema::default(), RowShape::Wide, Lang::InfluxQl).unwrap();
    }

    #[test]
    fn projection_keeps_named_tags_and_fields() {
        let mut spec = spec();
        spec.projection = Some(vec!["_time".into(), "temp".into(), "device".into()]);
        let sel = Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl).unwrap();
        assert_eq!(sel.field_names().collect::<Vec<_>>(), ["temp"]);
        assert_eq!(sel.tags.as_deref(), Some(&["device".to_string()][..]));
        assert!(sel.keeps_tag("device") && !sel.keeps_tag("site"));
        // Only tags: every field finds points, none is written.
        spec.projection = Some(vec!["site".into()]);
        let sel = Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl).unwrap();
        assert_eq!(sel.fields.len(), 3);
        assert_eq!(sel.emit, [false, false, false]);
        spec.projection = Some(vec!["bogus".into()]);
        assert!(Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl).is_err());
    }

    #[test]
    fn bounds_intersect_spec_and_chunk() {
        let mut spec = spec();
        spec.time_range = Some(TimeRange {
            start_ns: Some(10),
            end_ns: Some(100),
        });
        let sel = Selection::new(&spec, &schema(), RowShape::Wide, Lang::InfluxQl).unwrap();
        assert_eq!(
            sel.bounds(&ChunkRange::All).unwrap(),
            Some((Some(10), Some(100)))
        );
        let range = |s: Option<i64>, e: Option<i64>| ChunkRange::Range {
            field: TIME.into(),
            start: s.map(ValueBound::Timestamp),
            end: e.map(ValueBound::Timestamp),
        };
        assert_eq!(
            sel.bounds(&range(Some(50), None)).unwrap(),
            Some((Some(50), Some(100)))
        );
        assert_eq!(
            sel.bounds(&range(None, Some(20))).unwrap(),
            Some((Some(10), Some(20)))
        );
        assert_eq!(sel.bounds(&range(Some(100), Some(200))).unwrap(), None);
        let other = ChunkRange::Range {
            field: "_id".into(),
            start: None,
            end: None,
        };
        assert!(sel.bounds(&other).is_err());
    }

    #[test]
    fn counts_pick_the_fullest_field() {
        let c = Counts::new(
            RowShape::Wide,
            vec![("a".into(), 5), ("b".into(), 7), ("c".into(), 7)],
        );
        assert_eq!(
            (c.total, c.count_field.as_deref(), c.sparse),
            (7, Some("b"), true)
        );
        let c = Counts::new(RowShape::Wide, vec![("a".into(), 3), ("b".into(), 3)]);
        assert!(!c.sparse);
        let c = Counts::new(RowShape::Narrow, vec![("a".into(), 3), ("b".into(), 0)]);
        assert_eq!((c.total, c.histogram_fields()), (3, vec!["a".to_string()]));
        let c = Counts::new(RowShape::Wide, vec![("a".into(), 0)]);
        assert_eq!((c.total, c.count_field), (0, None));
    }
}
