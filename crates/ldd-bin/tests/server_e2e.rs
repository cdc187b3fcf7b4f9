//! `ldd serve` end to end against the real services: FerretDB (`LDD_TEST_MONGO_URL`),
//! InfluxDB 1.8 (`LDD_TEST_INFLUX_URL`), InfluxDB 2.7 (`LDD_TEST_INFLUX2_URL`, `_TOKEN`,
//! `_ORG`) and Kafka (`LDD_TEST_KAFKA_BROKERS`). A server on a real
//! socket registers the databases, loads generated data, exports through the original
//! endpoint and through v1, and every export is read back and verified.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs them) and loud: a missing service
//! variable fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../src/server/mod.rs"]
mod server;

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

use std::net::SocketAddr;
use std::time::Duration;

use ldd_core::{GeneratorConfig, Manifest};
use ldd_sink_kafka::readback::{read_back, ReadBackConfig};
use ldd_sink_kafka::TopicAdmin;
use serde_json::{json, Value};

const RECORDS: u64 = 20_000;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the services with scripts/services.sh start and export `scripts/services.sh env` (scripts/test.sh does both)")
    })
}

fn random(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A real server on a socket, with a fresh state directory.
struct Served {
    base: String,
    http: reqwest::Client,
    state: server::AppState,
    brokers: String,
    manifest_topic: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: std::path::PathBuf,
    topics: Vec<String>,
}

impl Served {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server whose exports run on the workers of `group`, if given.
    async fn start_with(group: Option<String>) -> Self {
        let brokers = env("LDD_TEST_KAFKA_BROKERS");
        let dir = std::env::temp_dir().join(random("ldd-e2e-state"));
        let manifest_topic = random("ldd-e2e-manifests").replace('_', "-");
        let mut config = server::ServerConfig::with_state_dir(&dir);
        config.token = Some("e2e-token-0123456789abcdef".into());
        config.exports.brokers = Some(brokers.clone());
        config.exports.manifest_topic = manifest_topic.clone();
        config.exports.workers = 4;
        config.exports.group = group;
        let state = server::AppState::open(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let task = tokio::spawn(async move {
            server::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            "Bearer e2e-token-0123456789abcdef".parse().unwrap(),
        );
        Served {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            state,
            brokers,
            topics: vec![manifest_topic.clone()],
            manifest_topic,
            stop: Some(tx),
            task: Some(task),
            dir,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn topic(&mut self) -> String {
        let topic = random("ldd-e2e").replace('_', "-");
        self.topics.push(topic.clone());
        topic
    }

    /// Registers through the original endpoint and loads generated records.
    async fn register_and_load(&self, body: Value, database: &str, table: &str) {
        let (status, answer) = self.post("/db-connections/register", body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        let id = body["connection_id"].as_str().unwrap();
        let connection = self.fixtures(id).await;
        let config = GeneratorConfig {
            records: RECORDS,
            devices: 10,
            ..Default::default()
        };
        let loaded = connection
            .load_generated(database, table, &config, &|_| {})
            .await
            .unwrap();
        assert_eq!(loaded, RECORDS);
    }

    /// A second connection to a registered database, able to load and drop test data (the
    /// server's own connections cannot).
    async fn fixtures(&self, id: &str) -> std::sync::Arc<dyn ldd_sources::Fixtures> {
        let spec = self.state.registry().spec(id).unwrap();
        ldd_sources::connect_fixtures(&spec.source).await.unwrap()
    }

    async fn manifest(&self, id: &str) -> Manifest {
        let (status, manifest) = self.get(&format!("/v1/exports/{id}/manifest")).await;
        assert_eq!(status, 200, "{manifest}");
        serde_json::from_value(manifest).unwrap()
    }

    async fn verify(&self, manifest: Manifest) {
        let config = ReadBackConfig::new(self.brokers.clone());
        let report = tokio::task::spawn_blocking(move || read_back(&manifest, &config, None))
            .await
            .unwrap()
            .unwrap();
        assert!(report.is_verified(), "{report:?}");
    }

    async fn wait(&self, id: &str) -> Value {
        for _ in 0..1200 {
            let (_, status) = self.get(&format!("/v1/exports/{id}")).await;
            if ["succeeded", "failed", "cancelled", "interrupted"]
                .contains(&status["state"].as_str().unwrap_or_default())
            {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("export {id} did not finish in 5 minutes");
    }

    async fn finish(mut self, connection: &str, database: &str, table: &str) {
        let live = self.fixtures(connection).await;
        live.drop_dataset(database, table).await.unwrap();
        live.drop_dataset(database, "").await.unwrap();
        let admin = TopicAdmin::new(self.brokers.clone());
        for topic in &self.topics {
            admin.delete_topic(topic).await.unwrap();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Checks an original export answer against its manifest and reads it back.
async fn check_original_answer(s: &Served, answer: &Value, topic: &str, expected: u64) {
    for field in [
        "queryStartStr",
        "queryEndStr",
        "databaseStr",
        "tableStr",
        "tagKeyStr",
        "tagValueStr",
        "kafkaBrokersStr",
        "sendTopicStr",
        "totalMessages",
        "startTimeMillis",
        "endTimeMillis",
        "offsetsData",
        "exportId",
    ] {
        assert!(
            answer.get(field).is_some(),
            "answer lacks {field}: {answer}"
        );
    }
    assert_eq!(answer["sendTopicStr"], topic);
    assert_eq!(answer["totalMessages"], expected);
    let manifest = s.manifest(answer["exportId"].as_str().unwrap()).await;
    let offsets: Vec<String> = serde_json::from_value(answer["offsetsData"].clone()).unwrap();
    assert_eq!(offsets, manifest.offsets_data());
    assert_eq!(manifest.total_records, expected);
    s.verify(manifest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real services; scripts/test.sh runs it"]
async fn ferretdb_through_the_original_endpoints_and_v1() {
    let mongo_url = env("LDD_TEST_MONGO_URL");
    let mut s = Served::start().await;
    let (database, table) = (random("ldd_e2e"), "sensors".to_owned());
    s.register_and_load(
        json!({"connection_id": "ferret", "db_type": "mongo", "url": mongo_url, "database": database}),
        &database,
        &table,
    )
    .await;

    let (status, list) = s.get("/datasets/list/?connection_id=ferret").await;
    assert_eq!(status, 200, "{list}");
    assert!(list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["dataset_name"] == format!("{database}:{table}")
            && d["dataset_type"] == "MongoDB"));
    let (status, detail) = s
        .get(&format!("/datasets/detail/?connection_id=ferret&mongo_database={database}&collection={table}&time_field=_time"))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["count"], RECORDS);
    assert_eq!(detail["start"], "2024-01-01T00:00:00.000Z");
    assert!(!detail["columns"]
        .as_array()
        .unwrap()
        .contains(&json!("_id")));
    let (status, range) = s
        .get(&format!(
            "/datasets/time-range?connection_id=ferret&collection={table}&time_field=_time"
        ))
        .await;
    assert_eq!(status, 200, "{range}");
    assert_eq!(range["databaseStr"], database.as_str()); // the connection's database

    // The original export into a topic that does not exist yet: created with the default
    // partition count.
    let topic = s.topic();
    let (status, answer) = s
        .get(&format!(
            "/data/export/?connection_id=ferret&database={database}&collection={table}&time_field=_time&kafka_brokers={}&send_topic={topic}",
            s.brokers
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    check_original_answer(&s, &answer, &topic, RECORDS).await;
    assert_eq!(answer["offsetsData"].as_array().unwrap().len(), 4);

    // v1, with a tag filter and a time range, transactional.
    let topic = s.topic();
    let (status, accepted) = s
        .post(
            "/v1/exports",
            json!({
                "connection": "ferret",
                "dataset": {"database": database, "table": table, "time_field": "_time",
                            "filters": [{"field": "device", "value": "dev-00003"}],
                            "time_range": {"start": "2024-01-01T00:00:05Z", "end": "2024-01-01T00:00:15Z"}},
                "destination": {"topic": topic, "partitions": 3, "transactional": true},
                "format": "jsonl",
                "jobs": 6
            }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let status = s.wait(accepted["id"].as_str().unwrap()).await;
    assert_eq!(status["state"], "succeeded", "{status}");
    // 10 s at 1 ms per record, every 10th record is dev-00003.
    assert_eq!(status["progress"]["records_done"], 1_000);
    let manifest = s.manifest(accepted["id"].as_str().unwrap()).await;
    assert!(manifest.transactional);
    let published = ldd_sink_kafka::manifest_topic::fetch_manifest(
        &s.brokers.as_str().into(),
        &s.manifest_topic,
        &manifest.export_id,
    )
    .await
    .unwrap();
    assert_eq!(published, manifest);
    s.verify(manifest).await;

    s.finish("ferret", &database, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real services; scripts/test.sh runs it"]
async fn influxdb_through_the_original_endpoints_and_v1() {
    let influx_url = env("LDD_TEST_INFLUX_URL");
    let mut s = Served::start().await;
    let (database, table) = (random("ldd_e2e"), "cpu".to_owned());
    s.register_and_load(
        json!({"connection_id": "influx", "db_type": "influx", "url": influx_url}),
        &database,
        &table,
    )
    .await;

    let (status, detail) = s
        .get(&format!(
            "/datasets/detail/?connection_id=influx&bucket_name={database}&measurement={table}"
        ))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["value"], RECORDS);
    let (status, range) = s
        .get(&format!("/datasets/time-range/?connection_id=influx&bucket={database}&measurement={table}&tag_key=device&tag_value=dev-00003"))
        .await;
    assert_eq!(status, 200, "{range}");
    assert_eq!(range["queryStartStr"], "2024-01-01T00:00:00.003Z");
    assert_eq!(range["tagKeyStr"], "device");

    // The original query-by-time with a tag filter, drop_last off.
    let topic = s.topic();
    let (status, answer) = s
        .get(&format!(
            "/data/query-by-time/?connection_id=influx&bucket={database}&measurement={table}&tag_key=device&tag_value=dev-00003&drop_last=false&kafka_brokers={}&send_topic={topic}",
            s.brokers
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    check_original_answer(&s, &answer, &topic, RECORDS / 10).await;
    assert_eq!(answer["queryEndStr"], "2024-01-01T00:00:19.993Z");

    // v1, whole measurement, protobuf.
    let topic = s.topic();
    let (status, accepted) = s
        .post(
            "/v1/exports",
            json!({
                "connection": "influx",
                "dataset": {"database": database, "table": table},
                "destination": {"topic": topic, "partitions": 6},
                "format": "protobuf"
            }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let status = s.wait(accepted["id"].as_str().unwrap()).await;
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["plan"]["partitions"], 6);
    let manifest = s.manifest(accepted["id"].as_str().unwrap()).await;
    assert_eq!(manifest.total_records, RECORDS);
    s.verify(manifest).await;

    // Secrets never come back; metrics saw the records.
    let (_, connections) = s.get("/v1/connections").await;
    assert_eq!(connections["connections"][0]["status"], "active");
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "ldd_records_produced_total {}",
            RECORDS + RECORDS / 10
        )),
        "{metrics}"
    );

    s.finish("influx", &database, &table).await;
}

/// The original system's own target: InfluxDB 2.x, registered with a token and an
/// organisation exactly as the original README shows, then catalogue, detail and the
/// original export; a wrong token is refused with a message naming the cause and never
/// echoing the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real services; scripts/test.sh runs it"]
async fn influxdb2_with_token_and_org_through_the_original_endpoints() {
    let url = env("LDD_TEST_INFLUX2_URL");
    let token = env("LDD_TEST_INFLUX2_TOKEN");
    let org = env("LDD_TEST_INFLUX2_ORG");
    let mut s = Served::start().await;
    let (bucket, table) = (random("ldd_e2e"), "cpu".to_owned());
    s.register_and_load(
        json!({"connection_id": "influx-2", "db_type": "influx", "url": url, "token": token, "org": org}),
        &bucket,
        &table,
    )
    .await;

    let (status, list) = s.get("/datasets/list/?connection_id=influx-2").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["dataset_name"].as_str())
        .collect();
    assert!(
        names.contains(&format!("{bucket}:{table}").as_str()),
        "{list}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with('_')),
        "system buckets must not be listed: {names:?}"
    );
    let (status, detail) = s
        .get(&format!(
            "/datasets/detail/?connection_id=influx-2&bucket_name={bucket}&measurement={table}"
        ))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["value"], RECORDS);
    let (status, range) = s
        .get(&format!("/datasets/time-range/?connection_id=influx-2&bucket={bucket}&measurement={table}&tag_key=device&tag_value=dev-00003"))
        .await;
    assert_eq!(status, 200, "{range}");
    assert_eq!(range["queryStartStr"], "2024-01-01T00:00:00.003Z");

    let topic = s.topic();
    let (status, answer) = s
        .get(&format!(
            "/data/export/?connection_id=influx-2&bucket={bucket}&measurement={table}&kafka_brokers={}&send_topic={topic}",
            s.brokers
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    check_original_answer(&s, &answer, &topic, RECORDS).await;

    // A wrong token: refused where it is first used, with the cause, and never echoed.
    let wrong = "wrong-token-5f3a9c1e7b";
    let (status, registered) = s
        .post(
            "/db-connections/register",
            json!({"connection_id": "influx-bad", "db_type": "influx", "url": url, "token": wrong, "org": org}),
        )
        .await;
    let text = registered.to_string();
    assert!(!text.contains(wrong), "the token was echoed: {text}");
    let failure = if status == 200 {
        let (status, listed) = s.get("/datasets/list/?connection_id=influx-bad").await;
        assert!(
            (400..600).contains(&status) && status != 500,
            "a wrong token must be a clear client or upstream error, got {status}: {listed}"
        );
        listed.to_string()
    } else {
        // Registering checks the connection: the refusal is the database's (502), or ours.
        assert!(
            (400..500).contains(&status) || status == 502,
            "a wrong token must be refused with 4xx or 502, got {status}: {text}"
        );
        text
    };
    assert!(!failure.contains(wrong), "the token was echoed: {failure}");
    let lower = failure.to_lowercase();
    assert!(
        lower.contains("unauthorized") || lower.contains("401") || lower.contains("token"),
        "the message must name the cause: {failure}"
    );

    s.finish("influx-2", &bucket, &table).await;
}

/// Worker processes, killed when dropped (also when the test panics).
struct Workers(Vec<std::process::Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// A server configured with a worker group runs a v1 export on the group's workers, which
/// resolve the export's connection by its id in their own connections file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real services; scripts/test.sh runs it"]
async fn a_v1_export_runs_on_the_configured_worker_group() {
    let influx_url = env("LDD_TEST_INFLUX_URL");
    let group = random("ldd-e2e-group").replace('_', "-");
    let mut s = Served::start_with(Some(group.clone())).await;
    s.topics.push(format!("ldd.{group}.tasks"));
    s.topics.push(format!("ldd.{group}.results"));
    let (database, table) = (random("ldd_e2e"), "cpu".to_owned());
    s.register_and_load(
        json!({"connection_id": "influx", "db_type": "influx", "url": influx_url}),
        &database,
        &table,
    )
    .await;
    let connections = s.dir.join("worker-connections.json");
    std::fs::write(
        &connections,
        json!([{"id": "influx", "db_type": "influx", "url": influx_url}]).to_string(),
    )
    .unwrap();
    let workers = Workers(
        (0..2)
            .map(|i| {
                std::process::Command::new(env!("CARGO_BIN_EXE_ldd"))
                    .args(["worker", "--brokers", &s.brokers, "--group", &group])
                    .args(["--worker-id", &format!("e2e-{i}"), "--connections"])
                    .arg(&connections)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let topic = s.topic();
    let (status, accepted) = s
        .post(
            "/v1/exports",
            json!({
                "connection": "influx",
                "dataset": {"database": database, "table": table},
                "destination": {"topic": topic, "partitions": 4},
                "format": "jsonl"
            }),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let status = s.wait(&id).await;
    drop(workers);
    assert_eq!(status["state"], "succeeded", "{status}");
    let manifest = s.manifest(&id).await;
    assert_eq!(manifest.total_records, RECORDS);
    assert_eq!(manifest.export_id, id);
    // Not only ldd's own read-back: a plain read_committed reader of the manifest's ranges
    // sees every record exactly once.
    let path = s.dir.join("group-manifest.json");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let brokers = s.brokers.clone();
    let plain = tokio::task::spawn_blocking(move || {
        let seq = |r: &Value| r["seq"].as_u64().expect("a record with `seq`").to_string();
        plain_reader::read_manifest_file(&brokers, &path, &seq, Duration::from_secs(120))
    })
    .await
    .unwrap();
    assert_eq!(
        (plain.total, plain.distinct, plain.duplicated),
        (RECORDS, RECORDS, 0)
    );
    s.verify(manifest).await;
    s.finish("influx", &database, &table).await;
}
