//! [`InfluxSource`]: one measurement as an [`ldd_core::DataSource`], and the queries it and
//! the connection share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use ldd_core::{
    ChunkRange, DataSource, DatasetSpec, PlanStrategy, PlannedRange, Record, RecordStream, Split,
    SplitKind, Value, ValueBound,
};

use super::client::HttpClient;
use super::config::RowShape;
use super::dataset::{validate_spec, Counts, FieldType, Lang, Schema, Selection, TIME};
use super::plan::{plan_windows, Histogram};
use super::query::{self, Bounds};
use super::read::{flux_records, influxql_records};
use crate::error::{Error, Result};

/// The name of the planning strategy.
pub const STRATEGY: &str = "time-windows";

/// What a connection and its sources share: the client and how to query.
#[derive(Debug)]
pub(crate) struct Backend {
    /// HTTP access.
    pub(crate) client: HttpClient,
    /// The language queries use.
    pub(crate) lang: Lang,
    /// Record shape.
    pub(crate) shape: RowShape,
    /// Rows per InfluxQL answer chunk / records per Flux batch.
    pub(crate) chunk_size: usize,
    /// Base URL, for descriptions.
    pub(crate) url: String,
}

/// An engine-facing error back as a source error (for reads the connection consumes).
fn from_core(err: ldd_core::Error) -> Error {
    match err {
        ldd_core::Error::InvalidInput(msg) => Error::InvalidInput(msg),
        other => Error::Decode(other.chain()),
    }
}

fn first_string(row: &[serde_json::Value]) -> Option<String> {
    row.first().and_then(|v| v.as_str()).map(str::to_owned)
}

fn as_count(value: Option<&serde_json::Value>) -> u64 {
    value.and_then(serde_json::Value::as_u64).unwrap_or(0)
}

/// A Flux error saying the bucket (1.8: the database) does not exist, as `NotFound`; other
/// errors unchanged.
pub(crate) fn flux_not_found(err: Error, what: &str) -> Error {
    match &err {
        Error::Server { message, .. }
            if message.contains("no database")
                || message.contains("could not find bucket")
                || message.contains("bucket not found") =>
        {
            Error::NotFound(format!("{what}: {message}"))
        }
        _ => err,
    }
}

impl Backend {
    /// Tag and field keys of a measurement.
    pub(crate) async fn schema(&self, database: &str, measurement: &str) -> Result<Schema> {
        let context = format!("reading the schema of `{database}:{measurement}`");
        match self.lang {
            Lang::InfluxQl => {
                // Two requests: in one, InfluxDB 1.8 reports a missing database as
                // "not executed" instead of "database not found".
                let (tag_keys, field_keys) = query::influxql_schema(measurement)?;
                let mut tags = Vec::new();
                let mut fields = Vec::new();
                let results = self
                    .client
                    .influxql(Some(database), &tag_keys, &context)
                    .await?;
                for row in results
                    .iter()
                    .flat_map(|r| &r.series)
                    .flat_map(|s| &s.values)
                {
                    tags.extend(first_string(row));
                }
                let results = self
                    .client
                    .influxql(Some(database), &field_keys, &context)
                    .await?;
                for row in results
                    .iter()
                    .flat_map(|r| &r.series)
                    .flat_map(|s| &s.values)
                {
                    if let Some(key) = first_string(row) {
                        let ty = row.get(1).and_then(|v| v.as_str()).unwrap_or("");
                        fields.push((key, FieldType::parse(ty)));
                    }
                }
                Ok(Schema::new(tags, fields))
            }
            Lang::Flux => {
                let q = query::flux_schema(database, measurement)?;
                let rows = self
                    .client
                    .flux_collect(&q, &context)
                    .await
                    .map_err(|e| flux_not_found(e, &context))?;
                let mut tags = Vec::new();
                let mut fields = Vec::new();
                for row in rows {
                    let (Some(Value::String(result)), Some(Value::String(name))) =
                        (row.get("result"), row.get("_value"))
                    else {
                        continue;
                    };
                    match result.as_str() {
                        "keys"
                            if !["_start", "_stop", "_field", "_measurement"]
                                .contains(&name.as_str()) =>
                        {
                            tags.push(name.clone())
                        }
                        "fields" => fields.push((name.clone(), FieldType::Unknown)),
                        _ => {}
                    }
                }
                Ok(Schema::new(tags, fields))
            }
        }
    }

    /// Resolves a dataset against its schema.
    pub(crate) async fn selection(&self, spec: &DatasetSpec) -> Result<Selection> {
        validate_spec(spec)?;
        let schema = self.schema(&spec.database, &spec.table).await?;
        Selection::new(spec, &schema, self.shape, self.lang)
    }

    /// Per-field counts of a selection within `bounds`.
    pub(crate) async fn counts(&self, sel: &Selection, bounds: Bounds) -> Result<Counts> {
        let fields: Vec<String> = sel.field_names().map(str::to_owned).collect();
        if fields.is_empty() {
            return Ok(Counts::new(sel.shape, Vec::new()));
        }
        let context = format!("counting `{}:{}`", sel.database, sel.measurement);
        let mut found: HashMap<String, u64> = HashMap::new();
        match self.lang {
            Lang::InfluxQl => {
                let q = query::influxql_count(sel, &fields, bounds)?;
                let results = self
                    .client
                    .influxql(Some(&sel.database), &q, &context)
                    .await?;
                if let Some(row) = results
                    .first()
                    .and_then(|r| r.series.first())
                    .and_then(|s| s.values.first())
                {
                    for (i, f) in fields.iter().enumerate() {
                        found.insert(f.clone(), as_count(row.get(1 + i)));
                    }
                }
            }
            Lang::Flux => {
                let q = query::flux_count(sel, &fields, bounds)?;
                let rows = self
                    .client
                    .flux_collect(&q, &context)
                    .await
                    .map_err(|e| flux_not_found(e, &context))?;
                for row in rows {
                    if let (Some(Value::String(f)), Some(Value::Int(c))) =
                        (row.get("_field"), row.get("_value"))
                    {
                        *found.entry(f.clone()).or_default() += u64::try_from(*c).unwrap_or(0);
                    }
                }
            }
        }
        let per_field = fields
            .into_iter()
            .map(|f| {
                let c = found.get(&f).copied().unwrap_or(0);
                (f, c)
            })
            .collect();
        Ok(Counts::new(sel.shape, per_field))
    }

    /// Times of the first and last point of a selection within `bounds`.
    pub(crate) async fn first_last(
        &self,
        sel: &Selection,
        bounds: Bounds,
    ) -> Result<Option<(i64, i64)>> {
        let fields: Vec<String> = sel.field_names().map(str::to_owned).collect();
        if fields.is_empty() {
            return Ok(None);
        }
        let context = format!(
            "finding the time range of `{}:{}`",
            sel.database, sel.measurement
        );
        let (mut first, mut last) = (None, None);
        match self.lang {
            Lang::InfluxQl => {
                let q = format!(
                    "{}; {}",
                    query::influxql_read(sel, bounds, false, Some(1))?,
                    query::influxql_read(sel, bounds, true, Some(1))?
                );
                let results = self
                    .client
                    .influxql(Some(&sel.database), &q, &context)
                    .await?;
                for result in results {
                    let time = result
                        .series
                        .first()
                        .and_then(|s| s.values.first())
                        .and_then(|row| row.first())
                        .and_then(serde_json::Value::as_i64);
                    match result.statement_id {
                        0 => first = time,
                        1 => last = time,
                        _ => {}
                    }
                }
            }
            Lang::Flux => {
                let q = query::flux_first_last(sel, &fields, bounds)?;
                let rows = self
                    .client
                    .flux_collect(&q, &context)
                    .await
                    .map_err(|e| flux_not_found(e, &context))?;
                for row in rows {
                    if let (Some(Value::String(result)), Some(Value::Timestamp(t))) =
                        (row.get("result"), row.get("_time"))
                    {
                        match result.as_str() {
                            "first" => first = Some(first.map_or(*t, |f: i64| f.min(*t))),
                            "last" => last = Some(last.map_or(*t, |l: i64| l.max(*t))),
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(first.zip(last))
    }

    /// Streams the records of a selection within `bounds` (ordered by time for InfluxQL;
    /// series by series, each in time order, for Flux).
    pub(crate) async fn read(&self, sel: Arc<Selection>, bounds: Bounds) -> Result<RecordStream> {
        if sel.fields.is_empty() {
            return Ok(stream::empty().boxed());
        }
        let context = format!("reading `{}:{}`", sel.database, sel.measurement);
        match self.lang {
            Lang::InfluxQl => {
                let q = query::influxql_read(&sel, bounds, false, None)?;
                let answer = self
                    .client
                    .influxql_stream(&sel.database, &q, self.chunk_size, &context)
                    .await?;
                Ok(influxql_records(answer, sel))
            }
            Lang::Flux => {
                let q = query::flux_read(&sel, bounds, sel.shape == RowShape::Wide)?;
                let answer = self
                    .client
                    .flux_stream(&q, &context)
                    .await
                    .map_err(|e| flux_not_found(e, &context))?;
                Ok(flux_records(answer, sel, self.chunk_size))
            }
        }
    }

    /// The first (or last) record at one instant.
    pub(crate) async fn record_at(
        &self,
        sel: &Arc<Selection>,
        time: i64,
        last: bool,
    ) -> Result<Option<Record>> {
        let bounds = (Some(time), Some(time.saturating_add(1)));
        let mut stream = self.read(Arc::clone(sel), bounds).await?;
        let mut found = None;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(from_core)?;
            if last {
                if let Some(r) = batch.into_iter().last() {
                    found = Some(r);
                }
            } else if let Some(r) = batch.into_iter().next() {
                return Ok(Some(r));
            }
        }
        Ok(found)
    }
}

/// Histogram queries of one selection.
struct Histograms<'a> {
    backend: &'a Backend,
    sel: &'a Selection,
    fields: Vec<String>,
}

impl Histogram for Histograms<'_> {
    async fn histogram(&self, start: i64, end: i64, width: i64) -> Result<Vec<(i64, u64)>> {
        let sel = self.sel;
        let context = format!(
            "counting `{}:{}` per time bucket",
            sel.database, sel.measurement
        );
        match self.backend.lang {
            Lang::InfluxQl => {
                let q = query::influxql_histogram(sel, &self.fields, start, end, width)?;
                let results = self
                    .backend
                    .client
                    .influxql(Some(&sel.database), &q, &context)
                    .await?;
                let mut out = Vec::new();
                for series in results.iter().flat_map(|r| &r.series) {
                    for row in &series.values {
                        let Some(time) = row.first().and_then(serde_json::Value::as_i64) else {
                            continue;
                        };
                        let count = (1..row.len()).map(|i| as_count(row.get(i))).sum();
                        out.push((time, count));
                    }
                }
                Ok(out)
            }
            Lang::Flux => {
                let q = query::flux_histogram(sel, &self.fields, start, end, width)?;
                let rows = self.backend.client.flux_collect(&q, &context).await?;
                Ok(rows
                    .iter()
                    .filter_map(|row| match (row.get("_time"), row.get("_value")) {
                        (Some(Value::Timestamp(t)), Some(Value::Int(c))) => {
                            Some((*t, u64::try_from(*c).unwrap_or(0)))
                        }
                        _ => None,
                    })
                    .collect())
            }
        }
    }
}

/// One InfluxDB measurement (with filters, time range and projection) as a
/// [`DataSource`].
///
/// Counting: in the wide shape a record is a point, counted as the count of the field most
/// points have (`count("f")` counts the points holding `f`); that is exact when some field
/// is in every point, as with generated data, and otherwise a lower bound (the plan then
/// says so in its reason). In the narrow shape a record is a field value and counts are
/// summed over fields, always exact.
///
/// Splitting: time windows balanced by record count from `GROUP BY time` histograms: one
/// over the whole time range with 20 buckets per chunk, then finer ones of just the buckets
/// a cut falls in, until every cut is within 5% of a chunk of its ideal place (so chunks
/// are within ±10%) or falls on a single timestamp, which is never split. The strategy is
/// [`STRATEGY`]; its `queries` are the requests sent while planning (the count, first/last
/// time, and each histogram). `ChunkRange::All` reads the whole dataset in time order
/// (InfluxQL) or series by series, each in time order (Flux).
pub struct InfluxSource {
    backend: Arc<Backend>,
    spec: DatasetSpec,
    selection: tokio::sync::OnceCell<Arc<Selection>>,
    counts: Mutex<Option<Arc<Counts>>>,
}

impl std::fmt::Debug for InfluxSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxSource")
            .field("dataset", &self.spec.display_name())
            .field("lang", &self.backend.lang)
            .field("shape", &self.backend.shape)
            .finish_non_exhaustive()
    }
}

impl InfluxSource {
    pub(crate) fn new(
        backend: Arc<Backend>,
        spec: DatasetSpec,
        selection: Option<Selection>,
    ) -> Self {
        let cell = tokio::sync::OnceCell::new();
        if let Some(sel) = selection {
            let _ = cell.set(Arc::new(sel));
        }
        InfluxSource {
            backend,
            spec,
            selection: cell,
            counts: Mutex::new(None),
        }
    }

    /// The dataset.
    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    async fn selection(&self) -> Result<Arc<Selection>> {
        self.selection
            .get_or_try_init(|| async { self.backend.selection(&self.spec).await.map(Arc::new) })
            .await
            .cloned()
    }

    async fn fresh_counts(&self, sel: &Selection) -> Result<Arc<Counts>> {
        let bounds = (sel.time.start_ns, sel.time.end_ns);
        let counts = Arc::new(self.backend.counts(sel, bounds).await?);
        if let Ok(mut slot) = self.counts.lock() {
            *slot = Some(Arc::clone(&counts));
        }
        Ok(counts)
    }

    fn cached_counts(&self) -> Option<Arc<Counts>> {
        self.counts.lock().ok().and_then(|slot| slot.clone())
    }

    async fn split_inner(&self, chunks: usize) -> Result<Split> {
        let started = Instant::now();
        let sel = self.selection().await?;
        // The count request belongs to planning whether `count()` or this sent it.
        let mut queries = 1u32;
        let counts = match self.cached_counts() {
            Some(c) => c,
            None => self.fresh_counts(&sel).await?,
        };
        let strategy = |reason: Option<String>, queries: u32| PlanStrategy {
            name: STRATEGY.into(),
            reason,
            queries,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        if counts.total == 0 {
            return Ok(Split {
                kind: SplitKind::Ranges(Vec::new()),
                strategy: strategy(Some("the dataset has no records".into()), queries),
            });
        }
        let bounds = (sel.time.start_ns, sel.time.end_ns);
        queries += 1;
        let Some((first, last)) = self.backend.first_last(&sel, bounds).await? else {
            return Ok(Split {
                kind: SplitKind::Ranges(Vec::new()),
                strategy: strategy(Some("the dataset has no records".into()), queries),
            });
        };
        let histograms = Histograms {
            backend: &self.backend,
            sel: &sel,
            fields: counts.histogram_fields(),
        };
        let plan = match plan_windows(&histograms, first, last, chunks).await {
            Ok(plan) => plan,
            Err(e @ Error::Server { status, .. }) if status < 500 && status != 429 => {
                tracing::warn!(error = %e, "InfluxDB cannot count per time bucket; falling back to one scan");
                return Ok(Split {
                    kind: SplitKind::ScanOnly,
                    strategy: PlanStrategy {
                        name: "ordered-scan".into(),
                        reason: Some(format!(
                            "the server could not count per time bucket (GROUP BY time): {e}"
                        )),
                        queries: queries + 1,
                        duration_ms: started.elapsed().as_millis() as u64,
                    },
                });
            }
            Err(e) => return Err(e),
        };
        queries += plan.queries;
        tracing::info!(
            dataset = %self.spec.display_name(),
            chunks,
            windows = plan.windows.len(),
            queries,
            rounds = plan.rounds,
            coarse_cuts = plan.coarse_cuts,
            "planned InfluxDB time windows"
        );
        let reason = if counts.sparse {
            Some(format!(
                "fields have different counts; points are counted through `{}`, so a point \
                 without it is exported but not counted and chunk sizes are estimates",
                counts.count_field.as_deref().unwrap_or("?")
            ))
        } else if plan.total != counts.total {
            Some(format!(
                "the dataset changed while planning ({} records counted, {} in histograms); \
                 chunk sizes are estimates",
                counts.total, plan.total
            ))
        } else {
            None
        };
        let ranges = plan
            .windows
            .iter()
            .map(|w| PlannedRange {
                range: ChunkRange::Range {
                    field: TIME.into(),
                    start: w.start.map(ValueBound::Timestamp),
                    end: w.end.map(ValueBound::Timestamp),
                },
                expected_records: w.count,
            })
            .collect();
        Ok(Split {
            kind: SplitKind::Ranges(ranges),
            strategy: strategy(reason, queries),
        })
    }
}

#[async_trait]
impl DataSource for InfluxSource {
    fn describe(&self) -> String {
        let lang = match self.backend.lang {
            Lang::InfluxQl => "influxql",
            Lang::Flux => "flux",
        };
        let shape = match self.backend.shape {
            RowShape::Wide => "wide",
            RowShape::Narrow => "narrow",
        };
        format!(
            "influxdb {} {} ({lang}, {shape} rows)",
            self.backend.url,
            self.spec.display_name()
        )
    }

    async fn count(&self) -> ldd_core::Result<u64> {
        let sel = self.selection().await?;
        Ok(self.fresh_counts(&sel).await?.total)
    }

    async fn split(&self, chunks: usize, _total: u64) -> ldd_core::Result<Split> {
        Ok(self.split_inner(chunks).await?)
    }

    async fn read(&self, range: &ChunkRange) -> ldd_core::Result<RecordStream> {
        let sel = self.selection().await?;
        let Some(bounds) = sel.bounds(range)? else {
            return Ok(stream::empty().boxed());
        };
        Ok(self.backend.read(sel, bounds).await?)
    }
}
