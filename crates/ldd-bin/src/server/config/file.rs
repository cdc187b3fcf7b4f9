//! The config file: ldd's own keys (unknown ones rejected) and the original server's
//! `config.json` sections where they map (the rest ignored with a warning).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Deserialize;
use serde_json::Value as Json;

/// Settings read from the file, before flags are applied.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    pub(super) listen: Option<String>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) token: Option<String>,
    pub(super) allow_unauthenticated: Option<bool>,
    pub(super) shutdown_timeout_secs: Option<u64>,
    pub(super) brokers: Option<String>,
    pub(super) kafka_properties: BTreeMap<String, String>,
    pub(super) compression: Option<String>,
    pub(super) partitions: Option<u32>,
    pub(super) manifest_topic: Option<String>,
    pub(super) format: Option<String>,
    pub(super) jobs: Option<usize>,
    pub(super) workers: Option<usize>,
    pub(super) batch_kib: Option<usize>,
    pub(super) attempts: Option<u32>,
    pub(super) transaction_timeout_secs: Option<u64>,
    pub(super) max_concurrent: Option<usize>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    /// Address to listen on.
    listen: Option<String>,
    /// State directory.
    state_dir: Option<PathBuf>,
    /// Bearer token.
    token: Option<String>,
    /// Serve beyond loopback without a token.
    allow_unauthenticated: Option<bool>,
    /// Seconds shutdown waits for exports.
    shutdown_timeout_secs: Option<u64>,
    /// Kafka defaults (ldd keys and the original's).
    kafka: Option<KafkaSection>,
    /// Export defaults.
    exports: Option<ExportsSection>,
    /// Original: `port`, `shutdownTimeoutSeconds`.
    server: Option<OriginalSection>,
    /// Original: `workerNum`, `dividedJobs`, ...
    jobs: Option<OriginalSection>,
    /// Original sections that do not map onto ldd.
    database: Option<Json>,
    formats: Option<Json>,
    api: Option<Json>,
    example: Option<Json>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSection {
    brokers: Option<String>,
    /// librdkafka client properties of the brokers (security settings).
    #[serde(default)]
    properties: BTreeMap<String, String>,
    compression: Option<String>,
    default_partitions: Option<u32>,
    manifest_topic: Option<String>,
    #[serde(rename = "bootstrapServers")]
    bootstrap_servers: Option<String>,
    #[serde(rename = "compressionType")]
    compression_type: Option<String>,
    acks: Option<Json>,
    #[serde(rename = "enableIdempotence")]
    enable_idempotence: Option<Json>,
    #[serde(rename = "metadataTimeoutMs")]
    metadata_timeout_ms: Option<Json>,
    #[serde(rename = "watermarkTimeoutMs")]
    watermark_timeout_ms: Option<Json>,
    #[serde(rename = "flushTimeoutMs")]
    flush_timeout_ms: Option<Json>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportsSection {
    format: Option<String>,
    jobs: Option<usize>,
    workers: Option<usize>,
    batch_kib: Option<usize>,
    attempts: Option<u32>,
    transaction_timeout_secs: Option<u64>,
    max_concurrent: Option<usize>,
}

/// An original section: known keys are mapped, the rest ignored with a warning.
#[derive(Debug, Default, Deserialize)]
struct OriginalSection {
    #[serde(flatten)]
    keys: BTreeMap<String, Json>,
}

/// Picks one of an ldd key and its original alias; both set differently is an error.
fn one_of<T: PartialEq + fmt::Debug>(
    ldd: Option<T>,
    ldd_name: &str,
    original: Option<T>,
    original_name: &str,
) -> anyhow::Result<Option<T>> {
    match (ldd, original) {
        (Some(a), Some(b)) if a != b => bail!(
            "the config file sets both `{ldd_name}` ({a:?}) and the original `{original_name}` ({b:?}); keep one"
        ),
        (a, b) => Ok(a.or(b)),
    }
}

impl FileConfig {
    /// Reads and resolves the file at `path`; ignored settings become `warnings`.
    pub(super) fn load(path: &Path, warnings: &mut Vec<String>) -> anyhow::Result<Resolved> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let file: FileConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "config file {} is not valid (fix or remove the key named here)",
                path.display()
            )
        })?;
        file.resolve(warnings)
    }

    fn resolve(self, warnings: &mut Vec<String>) -> anyhow::Result<Resolved> {
        for (name, section) in [
            ("database", &self.database),
            ("formats", &self.formats),
            ("api", &self.api),
            ("example", &self.example),
        ] {
            if section.is_some() {
                warnings.push(format!(
                    "config: the original `{name}` section has no ldd equivalent and is ignored"
                ));
            }
        }
        let kafka = self.kafka.unwrap_or_default();
        for (name, value, fine) in [
            ("acks", &kafka.acks, &["all", "-1"][..]),
            (
                "enableIdempotence",
                &kafka.enable_idempotence,
                &["true"][..],
            ),
        ] {
            if let Some(v) = value {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                if !fine.contains(&text.as_str()) {
                    warnings.push(format!(
                        "config: kafka.{name} = {text} is ignored: ldd always produces with acks=all and idempotence"
                    ));
                }
            }
        }
        for (name, value) in [
            ("metadataTimeoutMs", &kafka.metadata_timeout_ms),
            ("watermarkTimeoutMs", &kafka.watermark_timeout_ms),
            ("flushTimeoutMs", &kafka.flush_timeout_ms),
        ] {
            if value.is_some() {
                warnings.push(format!(
                    "config: kafka.{name} is ignored (ldd waits for delivery reports, not watermarks or flushes)"
                ));
            }
        }
        let mut server = self.server.unwrap_or_default().keys;
        let port = server.remove("port");
        let shutdown = server.remove("shutdownTimeoutSeconds");
        for key in server.keys() {
            warnings.push(format!("config: server.{key} is not known and is ignored"));
        }
        let original_listen = match port {
            None => None,
            Some(Json::String(p)) => Some(if p.starts_with(':') {
                p
            } else {
                format!(":{p}")
            }),
            Some(Json::Number(n)) => Some(format!(":{n}")),
            Some(other) => bail!("config: server.port must be like \":3001\", got {other}"),
        };
        let original_shutdown = shutdown
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    anyhow::anyhow!("config: server.shutdownTimeoutSeconds must be a whole number")
                })
            })
            .transpose()?;
        let mut jobs = self.jobs.unwrap_or_default().keys;
        let number = |jobs: &mut BTreeMap<String, Json>,
                      key: &str|
         -> anyhow::Result<Option<usize>> {
            jobs.remove(key)
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| anyhow::anyhow!("config: jobs.{key} must be a whole number"))
                })
                .transpose()
        };
        let worker_num = number(&mut jobs, "workerNum")?;
        let divided_jobs = number(&mut jobs, "dividedJobs")?;
        for key in jobs.keys() {
            warnings.push(format!(
                "config: jobs.{key} is ignored (ldd sizes its queues from workers and jobs)"
            ));
        }
        let exports = self.exports.unwrap_or_default();
        Ok(Resolved {
            listen: one_of(self.listen, "listen", original_listen, "server.port")?,
            state_dir: self.state_dir,
            token: self.token,
            allow_unauthenticated: self.allow_unauthenticated,
            shutdown_timeout_secs: one_of(
                self.shutdown_timeout_secs,
                "shutdown_timeout_secs",
                original_shutdown,
                "server.shutdownTimeoutSeconds",
            )?,
            brokers: one_of(
                kafka.brokers,
                "kafka.brokers",
                kafka.bootstrap_servers,
                "kafka.bootstrapServers",
            )?,
            kafka_properties: kafka.properties,
            compression: one_of(
                kafka.compression,
                "kafka.compression",
                kafka.compression_type,
                "kafka.compressionType",
            )?,
            partitions: kafka.default_partitions,
            manifest_topic: kafka.manifest_topic,
            format: exports.format,
            jobs: one_of(
                exports.jobs,
                "exports.jobs",
                divided_jobs,
                "jobs.dividedJobs",
            )?,
            workers: one_of(
                exports.workers,
                "exports.workers",
                worker_num,
                "jobs.workerNum",
            )?,
            batch_kib: exports.batch_kib,
            attempts: exports.attempts,
            transaction_timeout_secs: exports.transaction_timeout_secs,
            max_concurrent: exports.max_concurrent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_text(text: &str) -> anyhow::Result<(Resolved, Vec<String>)> {
        let file: FileConfig = serde_json::from_str(text)?;
        let mut warnings = Vec::new();
        let resolved = file.resolve(&mut warnings)?;
        Ok((resolved, warnings))
    }

    #[test]
    fn the_original_config_json_maps() {
        let text = r#"{
          "server": {"port": ":3001", "shutdownTimeoutSeconds": 5},
          "kafka": {"bootstrapServers": "b1:9092,b2:9092", "acks": "all", "enableIdempotence": "true",
                    "compressionType": "lz4", "metadataTimeoutMs": 5000, "watermarkTimeoutMs": 1000,
                    "flushTimeoutMs": 15000},
          "jobs": {"workerNum": 6, "jobQueueCapacity": 100, "dividedJobs": 48, "jobsPerPartition": 4},
          "database": {"mongodb": {"maxPoolSize": 100}},
          "formats": {"dateTimeFormat": "2006-01-02T15:04:05.000Z"},
          "api": {"systemDatabases": ["admin"]},
          "example": {"personId": 1234}
        }"#;
        let (r, warnings) = resolve_text(text).unwrap();
        assert_eq!(r.listen.as_deref(), Some(":3001"));
        assert_eq!(r.brokers.as_deref(), Some("b1:9092,b2:9092"));
        assert_eq!(r.compression.as_deref(), Some("lz4"));
        assert_eq!((r.workers, r.jobs), (Some(6), Some(48)));
        assert_eq!(r.shutdown_timeout_secs, Some(5));
        let all = warnings.join("\n");
        for word in [
            "database",
            "formats",
            "api",
            "example",
            "jobQueueCapacity",
            "flushTimeoutMs",
        ] {
            assert!(all.contains(word), "{word} not warned: {all}");
        }
        assert_eq!(
            super::super::parse_listen(":3001").unwrap().to_string(),
            "127.0.0.1:3001"
        );
    }

    #[test]
    fn unknown_ldd_keys_and_contradictions_are_rejected() {
        let err = resolve_text(r#"{"lisen": "x"}"#).err().unwrap().to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = resolve_text(r#"{"kafka": {"brokers": "a:1", "bootstrapServers": "b:2"}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("keep one"), "{err}");
        assert!(resolve_text(r#"{"exports": {"wrkers": 2}}"#).is_err());
    }
}
