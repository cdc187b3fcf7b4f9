//! Flags shared by the subcommands that export or talk to Kafka: payload format,
//! compression, delivery, engine options, `key=value` properties and the Kafka client's
//! properties.

use clap::{Args, ValueEnum};

/// Payload format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// One JSON object per message (the original system's shape).
    Json,
    /// Many JSON objects per message, one per line.
    Jsonl,
    /// A protobuf RecordBatch per message (`proto/ldd/v1/records.proto`).
    Protobuf,
}

impl From<FormatArg> for ldd_core::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Json => ldd_core::Format::Json,
            FormatArg::Jsonl => ldd_core::Format::Jsonl,
            FormatArg::Protobuf => ldd_core::Format::Protobuf,
        }
    }
}

/// Compression of produced batches.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CompressionArg {
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
    /// None.
    None,
}

impl From<CompressionArg> for ldd_sink_kafka::Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::Lz4 => ldd_sink_kafka::Compression::Lz4,
            CompressionArg::Zstd => ldd_sink_kafka::Compression::Zstd,
            CompressionArg::None => ldd_sink_kafka::Compression::None,
        }
    }
}

/// The `--delivery` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeliveryArg {
    /// Each chunk is one Kafka transaction.
    ExactlyOnce,
    /// No transactions.
    AtLeastOnce,
}

impl From<DeliveryArg> for ldd_core::Delivery {
    fn from(d: DeliveryArg) -> Self {
        match d {
            DeliveryArg::ExactlyOnce => ldd_core::Delivery::ExactlyOnce,
            DeliveryArg::AtLeastOnce => ldd_core::Delivery::AtLeastOnce,
        }
    }
}

/// Options shared by everything that exports.
#[derive(Debug, Clone, Args)]
pub(crate) struct EngineArgs {
    /// Payload format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub(crate) format: FormatArg,
    /// Compression.
    #[arg(long, value_enum, default_value = "lz4")]
    pub(crate) compression: CompressionArg,
    /// Configured job count (chunks, before rounding to a multiple of the partitions);
    /// 48 by default (`ldd demo`: one chunk per 50,000 records, at least 48).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Keep all jobs (the original drops one before rounding).
    #[arg(long)]
    pub(crate) no_drop_last: bool,
    /// Chunks read and encoded at once (default: the number of CPUs).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Target payload size of batched formats, in KiB.
    #[arg(long, default_value_t = 128)]
    pub(crate) batch_kib: usize,
    /// What readers of the manifest's ranges are guaranteed. exactly-once: each chunk is one
    /// Kafka transaction, so any read_committed reader (Spark, Flink, a plain client) reads
    /// exactly the dataset. at-least-once: no transactions; failed or interrupted attempts
    /// leave messages inside the ranges that only header-aware readers (ldd consume) skip.
    #[arg(long, value_enum, default_value = "exactly-once")]
    pub(crate) delivery: DeliveryArg,
    /// Same as --delivery exactly-once (the default); kept for earlier command lines.
    #[arg(long, hide = true, conflicts_with = "delivery")]
    pub(crate) transactional: bool,
    /// Seconds a chunk's transaction may stay open before the broker aborts it: how long
    /// read_committed readers of a partition wait behind an export killed and never
    /// resumed (a resume fences it at once). 1..900.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=900))]
    pub(crate) transaction_timeout_secs: u64,
    /// Attempts per chunk (1..=20); retries wait 0.2 s doubling up to 30 s, with jitter.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=i64::from(ldd_core::RetryPolicy::MAX_ATTEMPTS)))]
    pub(crate) attempts: u32,
}

pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got `{s}`"))
}

/// Client properties of the Kafka cluster, given to every Kafka client ldd starts.
#[derive(Clone, Default, Args)]
pub(crate) struct KafkaClientArgs {
    /// librdkafka property of every Kafka client ldd starts (producers, consumers, admin,
    /// manifest topic), `key=value`, repeatable: security (`security.protocol=SASL_SSL`,
    /// `sasl.mechanism=PLAIN`, `sasl.username=...`, `sasl.password=...`, `ssl.*`) and any
    /// other client setting. LDD_KAFKA_PROPERTIES holds them separated by `;`: prefer it
    /// for secrets, flags show in process lists.
    #[arg(
        long = "kafka-property",
        env = "LDD_KAFKA_PROPERTIES",
        hide_env_values = true,
        value_delimiter = ';',
        value_parser = parse_key_value
    )]
    pub(crate) kafka_properties: Vec<(String, String)>,
}

impl KafkaClientArgs {
    /// The client of the cluster at `brokers` with these properties.
    pub(crate) fn client(&self, brokers: impl Into<String>) -> ldd_sink_kafka::KafkaClient {
        ldd_sink_kafka::KafkaClient::new(brokers).with_properties(self.kafka_properties.clone())
    }
}

/// Secrets stay out of debug output.
impl std::fmt::Debug for KafkaClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: std::collections::BTreeMap<String, String> =
            self.kafka_properties.iter().cloned().collect();
        f.debug_struct("KafkaClientArgs")
            .field(
                "kafka_properties",
                &ldd_sink_kafka::client::redacted(&properties),
            )
            .finish()
    }
}
