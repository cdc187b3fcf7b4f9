//! Server configuration: flags and environment (see [`ServeArgs`]) over an optional JSON
//! file, validated at start with messages that say how to fix them.
//!
//! The file has ldd's own keys (unknown ones are rejected) and also accepts the original
//! server's `config.json` sections where they map: `server.port` → listen port,
//! `server.shutdownTimeoutSeconds`, `kafka.bootstrapServers` → default brokers,
//! `kafka.compressionType`, `jobs.workerNum` → workers, `jobs.dividedJobs` → jobs. Original
//! settings ldd fixes (acks, idempotence, timeouts) and sections that do not map
//! (`database`, `formats`, `api`, `example`) are ignored with a warning.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use ldd_core::Format;
use ldd_sink_kafka::Compression;

mod file;

use file::{FileConfig, Resolved};

/// Default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:3001";

/// Flags of `ldd serve`. Each also reads an environment variable; flags and environment
/// win over the config file.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3001]. Without a token, only loopback
    /// addresses are allowed (see --allow-unauthenticated).
    #[arg(long, env = "LDD_LISTEN")]
    pub(crate) listen: Option<String>,
    /// JSON config file (ldd keys; the original server's config.json is accepted too).
    #[arg(long, env = "LDD_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Directory of the state file (connections, exports) [default: $XDG_STATE_HOME/ldd,
    /// else ./ldd-state].
    #[arg(long, env = "LDD_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Bearer token every request except /healthz must carry. Prefer the environment
    /// variable: flags show in process lists.
    #[arg(long, env = "LDD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Serve without a token on a non-loopback address (anyone who reaches the port can
    /// use every connection).
    #[arg(long)]
    pub(crate) allow_unauthenticated: bool,
    /// Default Kafka bootstrap servers of exports that name none.
    #[arg(long, env = "LDD_KAFKA_BROKERS")]
    pub(crate) kafka_brokers: Option<String>,
    /// librdkafka client property of the default brokers, `key=value`, repeatable
    /// (security: `security.protocol=SASL_SSL`, `sasl.username=...`, ...), over the config
    /// file's `kafka.properties`; every client of an export gets them (sink, admin,
    /// manifest topic), exports naming other brokers do not. LDD_KAFKA_PROPERTIES holds
    /// them separated by `;`: prefer it for secrets, flags show in process lists.
    #[arg(
        long = "kafka-property",
        env = "LDD_KAFKA_PROPERTIES",
        hide_env_values = true,
        value_delimiter = ';',
        value_parser = parse_property
    )]
    pub(crate) kafka_properties: Vec<(String, String)>,
    /// Partitions of topics ldd creates because they do not exist [default: 4].
    #[arg(long)]
    pub(crate) partitions: Option<u32>,
    /// Default compression: lz4, zstd or none [default: lz4].
    #[arg(long)]
    pub(crate) compression: Option<String>,
    /// Default format of v1 exports: json, jsonl or protobuf [default: jsonl]. The original
    /// endpoints use json (one record per message) unless their `format` parameter says
    /// otherwise.
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Default configured job count (the original's dividedJobs) [default: 48].
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Default chunks delivered at once per export (the original's workerNum) [default: 6].
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Exports running at once; more wait as `queued` [default: 2].
    #[arg(long)]
    pub(crate) max_concurrent_exports: Option<usize>,
    /// Topic manifests are published to; empty to skip [default: ldd.manifests].
    #[arg(long)]
    pub(crate) manifest_topic: Option<String>,
    /// Seconds to wait for running exports to stop at shutdown [default: 10].
    #[arg(long)]
    pub(crate) shutdown_timeout_secs: Option<u64>,
    /// Run exports' chunks on the workers of this group (`ldd worker --group G`) instead of
    /// in the server; workers resolve each export's connection by its id in their own
    /// --connections file.
    #[arg(long, env = "LDD_GROUP")]
    pub(crate) group: Option<String>,
}

/// Defaults of exports. `Debug` hides secret client properties.
#[derive(Clone, PartialEq)]
pub(crate) struct ExportDefaults {
    /// Brokers when a request names none.
    pub(crate) brokers: Option<String>,
    /// librdkafka client properties (security included) of every client talking to
    /// `brokers`: the sink's, the admin's and the manifest topic's.
    pub(crate) kafka_properties: BTreeMap<String, String>,
    /// Compression.
    pub(crate) compression: Compression,
    /// Partitions of topics ldd creates.
    pub(crate) partitions: u32,
    /// Manifest topic ("" to skip).
    pub(crate) manifest_topic: String,
    /// Format of v1 exports.
    pub(crate) format: Format,
    /// Configured job count.
    pub(crate) jobs: usize,
    /// Chunks at once.
    pub(crate) workers: usize,
    /// Batched payload target, KiB.
    pub(crate) batch_kib: usize,
    /// Attempts per chunk.
    pub(crate) attempts: u32,
    /// Seconds a chunk's transaction may stay open before the broker aborts it (how long
    /// readers wait behind an export killed and never resumed).
    pub(crate) transaction_timeout_secs: u64,
    /// Exports running at once.
    pub(crate) max_concurrent: usize,
    /// The worker group exports run on; `None` runs them in the server.
    pub(crate) group: Option<String>,
}

impl fmt::Debug for ExportDefaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportDefaults")
            .field("brokers", &self.brokers)
            .field(
                "kafka_properties",
                &ldd_sink_kafka::client::redacted(&self.kafka_properties),
            )
            .field("compression", &self.compression)
            .field("partitions", &self.partitions)
            .field("manifest_topic", &self.manifest_topic)
            .field("format", &self.format)
            .field("jobs", &self.jobs)
            .field("workers", &self.workers)
            .field("max_concurrent", &self.max_concurrent)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Default for ExportDefaults {
    fn default() -> Self {
        ExportDefaults {
            brokers: None,
            kafka_properties: BTreeMap::new(),
            compression: Compression::Lz4,
            partitions: 4,
            manifest_topic: ldd_sink_kafka::manifest_topic::DEFAULT_MANIFEST_TOPIC.to_owned(),
            format: Format::Jsonl,
            jobs: 48,
            workers: 6,
            batch_kib: 128,
            attempts: 3,
            transaction_timeout_secs: 60,
            max_concurrent: 2,
            group: None,
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Clone, PartialEq)]
pub(crate) struct ServerConfig {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// State directory.
    pub(crate) state_dir: PathBuf,
    /// Bearer token (never printed).
    pub(crate) token: Option<String>,
    /// Serve beyond loopback without a token.
    pub(crate) allow_unauthenticated: bool,
    /// Export defaults.
    pub(crate) exports: ExportDefaults,
    /// How long shutdown waits for exports to stop.
    pub(crate) shutdown_timeout: Duration,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("exports", &self.exports)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl ServerConfig {
    /// Defaults with this state directory (tests and embedding).
    pub(crate) fn with_state_dir(state_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3001),
            state_dir: state_dir.into(),
            token: None,
            allow_unauthenticated: false,
            exports: ExportDefaults::default(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }

    /// Flags and environment over the config file over defaults; returns the warnings
    /// to log (ignored original settings).
    pub(crate) fn resolve(args: &ServeArgs) -> anyhow::Result<(ServerConfig, Vec<String>)> {
        let mut warnings = Vec::new();
        let file = match &args.config {
            Some(path) => FileConfig::load(path, &mut warnings)?,
            None => Resolved::default(),
        };
        let listen_text = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = parse_listen(&listen_text)?;
        let base = ServerConfig::with_state_dir(default_state_dir());
        let defaults = base.exports.clone();
        let compression = match args.compression.clone().or(file.compression) {
            Some(text) => text.parse::<Compression>().map_err(|_| {
                anyhow::anyhow!("compression `{text}` is not known; use lz4, zstd or none")
            })?,
            None => defaults.compression,
        };
        let format = match args.format.clone().or(file.format) {
            Some(text) => text.parse::<Format>().map_err(|_| {
                anyhow::anyhow!("format `{text}` is not known; use json, jsonl or protobuf")
            })?,
            None => defaults.format,
        };
        let config = ServerConfig {
            listen,
            state_dir: args
                .state_dir
                .clone()
                .or(file.state_dir)
                .unwrap_or(base.state_dir),
            token: args.token.clone().or(file.token),
            allow_unauthenticated: args.allow_unauthenticated
                || file.allow_unauthenticated.unwrap_or(false),
            exports: ExportDefaults {
                brokers: args.kafka_brokers.clone().or(file.brokers),
                // Flags and environment win property by property over the file.
                kafka_properties: file
                    .kafka_properties
                    .into_iter()
                    .chain(args.kafka_properties.iter().cloned())
                    .collect(),
                compression,
                partitions: args
                    .partitions
                    .or(file.partitions)
                    .unwrap_or(defaults.partitions),
                manifest_topic: args
                    .manifest_topic
                    .clone()
                    .or(file.manifest_topic)
                    .unwrap_or(defaults.manifest_topic),
                format,
                jobs: args.jobs.or(file.jobs).unwrap_or(defaults.jobs),
                workers: args.workers.or(file.workers).unwrap_or(defaults.workers),
                batch_kib: file.batch_kib.unwrap_or(defaults.batch_kib),
                attempts: file.attempts.unwrap_or(defaults.attempts),
                transaction_timeout_secs: file
                    .transaction_timeout_secs
                    .unwrap_or(defaults.transaction_timeout_secs),
                max_concurrent: args
                    .max_concurrent_exports
                    .or(file.max_concurrent)
                    .unwrap_or(defaults.max_concurrent),
                group: args.group.clone(),
            },
            shutdown_timeout: args
                .shutdown_timeout_secs
                .or(file.shutdown_timeout_secs)
                .map_or(base.shutdown_timeout, Duration::from_secs),
        };
        config.validate(&mut warnings)?;
        Ok((config, warnings))
    }

    /// Checks the configuration without I/O; errors say how to fix them.
    pub(crate) fn validate(&self, warnings: &mut Vec<String>) -> anyhow::Result<()> {
        if let Some(group) = &self.exports.group {
            ldd_sink_kafka::distributed::GroupTopics::new(group)?;
        }
        if let Some(token) = &self.token {
            if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("the token is empty or contains whitespace; set LDD_TOKEN to a random string (e.g. `openssl rand -hex 32`)");
            }
            if token.len() < 16 {
                warnings.push(
                    "the token is shorter than 16 characters; use a longer random one".into(),
                );
            }
        }
        if self.token.is_none() && !self.listen.ip().is_loopback() && !self.allow_unauthenticated {
            bail!(
                "refusing to listen on {} without a token: anyone reaching it could read every \
                 registered database. Set a token (LDD_TOKEN or --token), listen on a loopback \
                 address (--listen 127.0.0.1:{}), or pass --allow-unauthenticated",
                self.listen,
                self.listen.port()
            );
        }
        let e = &self.exports;
        if let Some(brokers) = &e.brokers {
            super::validate::check_brokers("kafka brokers", brokers)
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            ldd_sink_kafka::KafkaClient {
                brokers: brokers.clone(),
                properties: e.kafka_properties.clone(),
            }
            .validate()
            .map_err(|err| anyhow::anyhow!("kafka properties: {err}"))?;
        } else if !e.kafka_properties.is_empty() {
            bail!("kafka properties are given but no kafka brokers: they are only sent to the configured brokers, so set those too (--kafka-brokers or kafka.brokers)");
        }
        if e.partitions == 0 {
            bail!("partitions must be at least 1 (the partition count of topics ldd creates)");
        }
        if !e.manifest_topic.is_empty() {
            super::validate::check_topic("manifest topic", &e.manifest_topic)
                .map_err(|err| anyhow::anyhow!("{err}; or give an empty one to skip publishing"))?;
        }
        if e.jobs == 0 || e.workers == 0 || e.max_concurrent == 0 || e.attempts == 0 {
            bail!("jobs, workers, max concurrent exports and attempts must each be at least 1");
        }
        if !(1..=16 * 1024).contains(&e.batch_kib) {
            bail!("batch_kib must be within 1..=16384");
        }
        if !(1..=900).contains(&e.transaction_timeout_secs) {
            bail!("transaction_timeout_secs must be within 1..=900 (the broker's default transaction.max.timeout.ms is 15 min)");
        }
        if self.shutdown_timeout.is_zero() {
            bail!("shutdown timeout must be at least 1 s");
        }
        Ok(())
    }
}

/// One `key=value` client property.
fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got `{text}`"))
}

/// `$XDG_STATE_HOME/ldd`, else `./ldd-state`.
fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_STATE_HOME") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("ldd"),
        _ => PathBuf::from("ldd-state"),
    }
}

/// `host:port`; `:port` and `localhost:port` mean 127.0.0.1 (the original's `":3001"`
/// listened everywhere: ldd stays on loopback unless told).
fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    let bad = || {
        anyhow::anyhow!(
            "listen address `{text}` is not host:port; give e.g. 127.0.0.1:3001 or 0.0.0.0:3001"
        )
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix(':')
        .or_else(|| text.strip_prefix("localhost:"))
        .or_else(|| text.chars().all(|c| c.is_ascii_digit()).then_some(text))
        .ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_token_beyond_loopback_is_refused() {
        let mut config = ServerConfig::with_state_dir("x");
        config.listen = "0.0.0.0:3001".parse().unwrap();
        let err = config.validate(&mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("--allow-unauthenticated"), "{err}");
        config.allow_unauthenticated = true;
        config.validate(&mut Vec::new()).unwrap();
        config.allow_unauthenticated = false;
        config.token = Some("0123456789abcdef0123".into());
        config.validate(&mut Vec::new()).unwrap();
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("ldd-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"jobs": {"workerNum": 3}, "exports": {"jobs": 10}}"#,
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            workers: Some(5),
            ..Default::default()
        };
        let (config, _) = ServerConfig::resolve(&args).unwrap();
        assert_eq!(config.exports.workers, 5);
        assert_eq!(config.exports.jobs, 10);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
