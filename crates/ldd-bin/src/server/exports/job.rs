//! From a request to a runnable export: defaults applied, everything checked without I/O.

use ldd_core::{DatasetSpec, ExportOptions, JobCountPartitioner, RetryPolicy, TimeBound, Value};
use ldd_sink_kafka::{KafkaClient, KafkaSinkConfig};

use super::model::{DatasetBody, DeliveryName, ExportRequest, Origin};
use crate::server::config::ExportDefaults;
use crate::server::error::{ApiError, ApiResult};
use crate::server::validate::{check_brokers, check_identifier, check_topic};

/// Everything a background export needs.
#[derive(Debug, Clone)]
pub(crate) struct ExportJob {
    /// Export id.
    pub(crate) id: String,
    /// Which API started it.
    pub(crate) origin: Origin,
    /// The request with defaults filled in (what is stored and shown).
    pub(crate) request: ExportRequest,
    /// The dataset.
    pub(crate) spec: DatasetSpec,
    /// The Kafka sink.
    pub(crate) sink: KafkaSinkConfig,
    /// Engine options.
    pub(crate) options: ExportOptions,
    /// Chunk rule.
    pub(crate) partitioner: JobCountPartitioner,
    /// Topic to publish the manifest to, if any.
    pub(crate) manifest_topic: Option<String>,
}

impl ExportJob {
    /// Applies `defaults` to `request` and checks it all.
    pub(crate) fn build(
        mut request: ExportRequest,
        defaults: &ExportDefaults,
        origin: Origin,
    ) -> ApiResult<Self> {
        check_identifier("connection", &request.connection)?;
        let spec = dataset_spec(&request.connection, &request.dataset)?;
        let d = &mut request.destination;
        let brokers = d.brokers.clone().or_else(|| defaults.brokers.clone()).ok_or_else(|| {
            ApiError::BadRequest(
                "no Kafka brokers: give destination.brokers (or start the server with --kafka-brokers)"
                    .into(),
            )
        })?;
        check_brokers("destination.brokers", &brokers)?;
        check_topic("destination.topic", &d.topic)?;
        d.brokers = Some(brokers.clone());
        let partitions = d.partitions.unwrap_or(defaults.partitions);
        if partitions == 0 || partitions > 10_000 {
            return Err(ApiError::BadRequest(
                "destination.partitions must be within 1..=10000".into(),
            ));
        }
        d.partitions = Some(partitions);
        let compression = d.compression.unwrap_or(defaults.compression.into());
        d.compression = Some(compression);
        let delivery = match (request.delivery, d.transactional) {
            (Some(DeliveryName::AtLeastOnce), Some(true))
            | (Some(DeliveryName::ExactlyOnce), Some(false)) => {
                return Err(ApiError::BadRequest(
                    "delivery contradicts destination.transactional; give only delivery".into(),
                ))
            }
            (Some(delivery), _) => delivery,
            (None, Some(false)) => DeliveryName::AtLeastOnce,
            (None, _) => DeliveryName::ExactlyOnce,
        };
        request.delivery = Some(delivery);
        d.transactional = None;

        let format = request.format.unwrap_or(defaults.format.into());
        request.format = Some(format);
        let jobs = request.jobs.unwrap_or(defaults.jobs);
        let workers = request.workers.unwrap_or(defaults.workers);
        let batch_kib = request.batch_kib.unwrap_or(defaults.batch_kib);
        let attempts = request.attempts.unwrap_or(defaults.attempts);
        let drop_last = request.drop_last.unwrap_or(true);
        if !(1..=100_000).contains(&jobs) {
            return Err(ApiError::BadRequest(
                "jobs must be within 1..=100000".into(),
            ));
        }
        if !(1..=256).contains(&workers) {
            return Err(ApiError::BadRequest(
                "workers must be within 1..=256".into(),
            ));
        }
        if !(1..=RetryPolicy::MAX_ATTEMPTS).contains(&attempts) {
            return Err(ApiError::BadRequest(format!(
                "attempts must be within 1..={}",
                RetryPolicy::MAX_ATTEMPTS
            )));
        }
        (
            request.jobs,
            request.workers,
            request.batch_kib,
            request.attempts,
            request.drop_last,
        ) = (
            Some(jobs),
            Some(workers),
            Some(batch_kib),
            Some(attempts),
            Some(drop_last),
        );

        let id = match &request.export_id {
            Some(id) => {
                check_identifier("export_id", id)?;
                id.clone()
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        request.export_id = Some(id.clone());
        let manifest_topic = request
            .manifest_topic
            .clone()
            .unwrap_or_else(|| defaults.manifest_topic.clone());
        if !manifest_topic.is_empty() {
            check_topic("manifest_topic", &manifest_topic)?;
        }
        request.manifest_topic = Some(manifest_topic.clone());

        let options = ExportOptions {
            export_id: Some(id.clone()),
            format: format.into(),
            batch_bytes: batch_kib.saturating_mul(1024),
            workers,
            retry: RetryPolicy {
                max_attempts: attempts,
                ..Default::default()
            },
            ..Default::default()
        };
        options
            .validate()
            .map_err(|e| ApiError::from_core("checking the options", e))?;
        // The server's client properties (credentials) go only to its configured brokers:
        // a request naming other brokers could otherwise send them anywhere.
        let properties = if defaults.brokers.as_deref() == Some(brokers.as_str()) {
            defaults.kafka_properties.clone()
        } else {
            Default::default()
        };
        let sink = KafkaSinkConfig {
            client: KafkaClient {
                brokers,
                properties,
            },
            topic: request.destination.topic.clone(),
            create_partitions: Some(partitions),
            compression: compression.into(),
            delivery: delivery.into(),
            transaction_timeout: std::time::Duration::from_secs(defaults.transaction_timeout_secs),
            ..Default::default()
        };
        sink.validate()
            .map_err(|e| ApiError::from_kafka("checking the destination", e))?;
        Ok(ExportJob {
            id,
            origin,
            request,
            spec,
            sink,
            options,
            partitioner: JobCountPartitioner { jobs, drop_last },
            manifest_topic: (!manifest_topic.is_empty()).then_some(manifest_topic),
        })
    }
}

/// The dataset spec of a request body, checked.
pub(crate) fn dataset_spec(connection: &str, body: &DatasetBody) -> ApiResult<DatasetSpec> {
    let mut builder = DatasetSpec::builder(body.database.clone(), body.table.clone())
        .named_with("dataset.")
        .connection(connection)
        .time_field(body.time_field.clone())
        .projection(body.projection.clone());
    for f in &body.filters {
        builder = builder.filter(f.field.clone(), f.value.clone());
    }
    if let Some(range) = &body.time_range {
        builder = builder
            .start(TimeBound::of(range.start.clone(), range.start_ns))
            .end(TimeBound::of(range.end.clone(), range.end_ns));
    }
    builder
        .build()
        .map_err(|e| ApiError::from_core("checking the dataset", e))
}

/// Parses an RFC 3339 instant into ns, or says how to write one.
pub(crate) fn parse_instant(name: &str, text: &str) -> ApiResult<i64> {
    Value::parse_timestamp(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{name}` `{}` is not an RFC 3339 time; write e.g. 2024-01-01T00:00:00.000Z",
            crate::server::validate::truncate(text, 64).escape_debug()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::exports::model::{DestinationBody, FilterBody, TimeRangeBody};

    fn request() -> ExportRequest {
        ExportRequest {
            connection: "c1".into(),
            dataset: DatasetBody {
                database: "db".into(),
                table: "t".into(),
                filters: vec![FilterBody {
                    field: "device".into(),
                    value: "d1".into(),
                }],
                time_field: None,
                time_range: Some(TimeRangeBody {
                    start: Some("2024-01-01T00:00:00Z".into()),
                    ..Default::default()
                }),
                projection: None,
            },
            destination: DestinationBody {
                brokers: None,
                topic: "out".into(),
                partitions: None,
                compression: None,
                transactional: None,
            },
            format: None,
            delivery: None,
            jobs: None,
            drop_last: None,
            workers: None,
            batch_kib: None,
            attempts: None,
            export_id: None,
            manifest_topic: None,
        }
    }

    #[test]
    fn exactly_once_is_the_default_and_contradictions_are_refused() {
        let defaults = ExportDefaults {
            brokers: Some("127.0.0.1:9092".into()),
            ..Default::default()
        };
        let job = ExportJob::build(request(), &defaults, Origin::V1).unwrap();
        assert_eq!(job.request.delivery, Some(DeliveryName::ExactlyOnce));
        assert_eq!(job.sink.delivery, ldd_core::Delivery::ExactlyOnce);
        let mut opt_out = request();
        opt_out.delivery = Some(DeliveryName::AtLeastOnce);
        let job = ExportJob::build(opt_out, &defaults, Origin::V1).unwrap();
        assert_eq!(job.sink.delivery, ldd_core::Delivery::AtLeastOnce);
        let mut old_name = request();
        old_name.destination.transactional = Some(false);
        let job = ExportJob::build(old_name, &defaults, Origin::V1).unwrap();
        assert_eq!(job.request.delivery, Some(DeliveryName::AtLeastOnce));
        let mut both = request();
        both.delivery = Some(DeliveryName::ExactlyOnce);
        both.destination.transactional = Some(false);
        let err = ExportJob::build(both, &defaults, Origin::V1).unwrap_err();
        assert!(err.to_string().contains("contradicts"), "{err}");
    }

    #[test]
    fn defaults_are_applied_and_recorded() {
        let defaults = ExportDefaults {
            brokers: Some("127.0.0.1:9092".into()),
            ..Default::default()
        };
        let job = ExportJob::build(request(), &defaults, Origin::V1).unwrap();
        assert_eq!(job.request.jobs, Some(48));
        assert_eq!(job.request.destination.partitions, Some(4));
        assert_eq!(job.sink.create_partitions, Some(4));
        assert!(job.partitioner.drop_last);
        assert_eq!(
            job.spec.time_range.unwrap().start_ns,
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(job.request.export_id.as_deref(), Some(job.id.as_str()));
    }

    #[test]
    fn bad_requests_say_what_to_fix() {
        let err = |r: ExportRequest| {
            ExportJob::build(r, &ExportDefaults::default(), Origin::V1)
                .unwrap_err()
                .to_string()
        };
        assert!(err(request()).contains("brokers"));
        let mut r = request();
        r.destination.brokers = Some("h:1".into());
        r.destination.topic = "bad topic".into();
        assert!(err(r).contains("topic"));
        let mut r = request();
        r.destination.brokers = Some("h:1".into());
        r.workers = Some(0);
        assert!(err(r).contains("workers"));
        let mut r = request();
        r.destination.brokers = Some("h:1".into());
        r.dataset.table = "cpu\0".into();
        assert!(err(r).contains("control"));
    }
}
