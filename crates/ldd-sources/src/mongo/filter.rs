//! Validated names and BSON filters built from a dataset description. User input only ever
//! becomes BSON *values* (never keys that start with `$`), so nothing is injected.

use ldd_core::{ChunkRange, DatasetSpec};
use mongodb::bson::{doc, Bson, Document};

use super::convert::bound_to_bson;
use crate::error::{Error, Result};

/// Rejects a field name MongoDB would treat as an operator or cannot store.
pub(crate) fn check_field(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidInput("a field name is empty".into()));
    }
    if name.starts_with('$') {
        return Err(Error::InvalidInput(format!(
            "field name `{}` starts with `$`, which MongoDB reads as an operator; use a plain field name",
            name.escape_debug()
        )));
    }
    if name.contains('\0') {
        return Err(Error::InvalidInput(
            "a field name contains a NUL byte".into(),
        ));
    }
    Ok(())
}

/// Rejects database names MongoDB does not allow.
pub(crate) fn check_database(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 {
        return Err(Error::InvalidInput(
            "a MongoDB database name must be 1-63 characters".into(),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
    {
        return Err(Error::InvalidInput(format!(
            "MongoDB database name `{}` contains `{}`, which is not allowed",
            name.escape_debug(),
            c.escape_debug()
        )));
    }
    Ok(())
}

/// Rejects collection names MongoDB does not allow.
pub(crate) fn check_collection(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('\0') || name.contains('$') || name.starts_with("system.") {
        return Err(Error::InvalidInput(format!(
            "`{}` is not a usable MongoDB collection name (empty, `$`, NUL or system.*)",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// The dataset's own filter: tag equalities and the time range.
pub(crate) fn dataset_filter(spec: &DatasetSpec) -> Result<Document> {
    let mut filter = Document::new();
    for f in &spec.filters {
        check_field(&f.field)?;
        // Always an equality on a string value: `{"$gt": ""}` as text matches only itself.
        filter.insert(
            f.field.clone(),
            doc! { "$eq": Bson::String(f.value.clone()) },
        );
    }
    if let Some(range) = &spec.time_range {
        let field = spec.time_field.as_deref().ok_or_else(|| {
            Error::InvalidInput("a time range needs a time field; give time_field".into())
        })?;
        check_field(field)?;
        let mut cond = Document::new();
        if let Some(s) = range.start_ns {
            cond.insert("$gte", ns_to_date(s));
        }
        if let Some(e) = range.end_ns {
            cond.insert("$lt", ns_to_date(e));
        }
        filter.insert(field.to_owned(), cond);
    }
    Ok(filter)
}

/// The dataset filter and a chunk's range on its split field, combined with `$and` so that
/// a range on the time field never replaces the dataset's own time range.
pub(crate) fn chunk_filter(base: &Document, range: &ChunkRange) -> Result<Document> {
    let ChunkRange::Range { field, start, end } = range else {
        return Ok(base.clone());
    };
    check_field(field)?;
    let mut cond = Document::new();
    let bad = || Error::InvalidInput(format!("range bound on `{field}` is not a BSON value"));
    if let Some(s) = start {
        cond.insert("$gte", bound_to_bson(s).ok_or_else(bad)?);
    }
    if let Some(e) = end {
        cond.insert("$lt", bound_to_bson(e).ok_or_else(bad)?);
    }
    if cond.is_empty() {
        return Ok(base.clone());
    }
    let range_doc = doc! { field.clone(): cond };
    if base.is_empty() {
        return Ok(range_doc);
    }
    Ok(doc! { "$and": [base.clone(), range_doc] })
}

/// Projection document (with `_id` kept so records stay identifiable).
pub(crate) fn projection(spec: &DatasetSpec) -> Result<Option<Document>> {
    let Some(fields) = &spec.projection else {
        return Ok(None);
    };
    let mut p = Document::new();
    for f in fields {
        check_field(f)?;
        p.insert(f.clone(), 1);
    }
    Ok(Some(p))
}

pub(crate) fn ns_to_date(ns: i64) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(
        ns.div_euclid(1_000_000),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldd_core::{FieldEquals, TimeRange, ValueBound};

    #[test]
    fn hostile_names_are_rejected_and_values_stay_values() {
        assert!(check_field("$where").is_err());
        assert!(check_field("a\0b").is_err());
        assert!(check_field("").is_err());
        check_field("quote\"and\\back\nslash").unwrap();
        assert!(check_database("a/b").is_err());
        assert!(check_database("x$y").is_err());
        assert!(check_collection("system.users").is_err());
        let mut spec = DatasetSpec::new("db", "c");
        spec.filters.push(FieldEquals {
            field: "device".into(),
            value: r#"{"$gt": ""}"#.into(),
        });
        let f = dataset_filter(&spec).unwrap();
        assert_eq!(f, doc! { "device": { "$eq": r#"{"$gt": ""}"# } });
        spec.filters[0].field = "$where".into();
        assert!(dataset_filter(&spec).is_err());
    }

    #[test]
    fn chunk_ranges_combine_with_the_time_range() {
        let mut spec = DatasetSpec::new("db", "c");
        spec.time_field = Some("t".into());
        spec.time_range = Some(TimeRange {
            start_ns: Some(1_000_000),
            end_ns: None,
        });
        let base = dataset_filter(&spec).unwrap();
        let range = ChunkRange::Range {
            field: "t".into(),
            start: None,
            end: Some(ValueBound::Timestamp(5_000_000)),
        };
        let f = chunk_filter(&base, &range).unwrap();
        assert_eq!(
            f,
            doc! { "$and": [ { "t": { "$gte": ns_to_date(1_000_000) } }, { "t": { "$lt": ns_to_date(5_000_000) } } ] }
        );
        assert_eq!(chunk_filter(&base, &ChunkRange::All).unwrap(), base);
        spec.time_field = None;
        assert!(dataset_filter(&spec).is_err());
    }
}
