//! `ldd serve` over HTTP, hermetic: a fake database connection (generated datasets) and an
//! embedded Kafka cluster. Most requests go in-process through the router; some through a
//! real socket (SSE, graceful shutdown, `ldd consume --server` and `--trigger-url`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../src/server/mod.rs"]
mod server;
mod server_common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use ldd_core::Manifest;
use ldd_sink_kafka::readback::{read_back, ReadBackConfig};
use serde_json::{json, Value};

use server::exports::model::ExportState;
use server_common::{TestServer, MANIFEST_TOPIC, SENSOR_RECORDS, SLOW_RECORDS};

fn manifest_of(value: &Value) -> Manifest {
    serde_json::from_value(value.clone()).unwrap()
}

async fn verify(server: &TestServer, manifest: Manifest) {
    let config = ReadBackConfig::new(server.brokers.clone());
    let report = tokio::task::spawn_blocking(move || read_back(&manifest, &config, None))
        .await
        .unwrap()
        .unwrap();
    assert!(report.is_verified(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_openapi() {
    let s = TestServer::new().await;
    let health = s.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");

    let doc = s.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/db-connections/register",
        "/db-connections/list",
        "/db-connections/remove",
        "/datasets/list/",
        "/datasets/detail/",
        "/datasets/time-range/",
        "/data/export/",
        "/data/query-by-time/",
        "/v1/connections",
        "/v1/connections/{id}",
        "/v1/connections/{id}/datasets",
        "/v1/connections/{id}/datasets/{database}/{table}",
        "/v1/connections/{id}/datasets/{database}/{table}/time-range",
        "/v1/exports",
        "/v1/exports/{id}",
        "/v1/exports/{id}/events",
        "/v1/exports/{id}/manifest",
        "/healthz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "openapi.json lacks {path}");
    }
    let params: Vec<&str> = paths["/data/export/"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "connection_id",
        "kafka_brokers",
        "send_topic",
        "bucket",
        "measurement",
        "drop_last",
        "mongo_database",
    ] {
        assert!(params.contains(&p), "{p} not documented: {params:?}");
    }
    assert!(doc["components"]["schemas"]["ExportRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let unknown = s.get("/no/such/thing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_connection_endpoints() {
    let s = TestServer::new().await;
    let ok = s
        .post(
            "/db-connections/register",
            json!({"connection_id": "influx-prod", "db_type": "influx", "url": "http://fake:8086",
                   "token": "tok-TOPSECRET", "org": "acme"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    assert_eq!(body["connection_id"], "influx-prod");
    assert_eq!(body["db_type"], "influx");
    assert!(body["message"].as_str().unwrap().contains("registered"));
    s.register("mongo-prod", "mongo").await;

    let list = s.get("/db-connections/list").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains("TOPSECRET"), "{}", list.text);
    let list = list.json();
    let conns = list["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    assert_eq!(
        conns[0],
        json!({"connection_id": "influx-prod", "db_type": "influx", "status": "active"})
    );
    let v1 = s.get("/v1/connections/influx-prod").await;
    assert!(!v1.text.contains("TOPSECRET"), "{}", v1.text);
    assert_eq!(v1.json()["has_token"], true);

    // Bad input: plain-text 400s that say what to fix.
    let missing = s
        .post("/db-connections/register", json!({"db_type": "influx"}))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.content_type.starts_with("text/plain"),
        "{}",
        missing.content_type
    );
    assert!(
        missing.text.contains("connection_id") && missing.text.contains("url"),
        "{}",
        missing.text
    );
    let wrong = s
        .post(
            "/db-connections/register",
            json!({"connection_id": "pg", "db_type": "postgres", "url": "x"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.text.contains("mongo") && wrong.text.contains("influx"),
        "{}",
        wrong.text
    );
    let hostile = s
        .post("/db-connections/register", json!({"connection_id": "../../etc/passwd", "db_type": "mongo", "url": "mongodb://fake/"}))
        .await;
    assert_eq!(hostile.status, StatusCode::BAD_REQUEST, "{}", hostile.text);
    let scheme = s
        .post(
            "/db-connections/register",
            json!({"connection_id": "m2", "db_type": "mongo", "url": "http://fake"}),
        )
        .await;
    assert_eq!(scheme.status, StatusCode::BAD_REQUEST);
    assert!(scheme.text.contains("mongodb://"), "{}", scheme.text);
    let not_json = s.call(Method::POST, "/db-connections/register", None).await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let down = s
        .post(
            "/db-connections/register",
            json!({"connection_id": "dead", "db_type": "influx", "url": "http://down:8086"}),
        )
        .await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY, "{}", down.text);
    assert!(down.text.contains("connection refused"));

    let no_id = s.delete("/db-connections/remove").await;
    assert_eq!(no_id.status, StatusCode::BAD_REQUEST);
    assert!(no_id.text.contains("connection_id"));
    let unknown = s.delete("/db-connections/remove?connection_id=nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let removed = s
        .delete("/db-connections/remove/?connection_id=mongo-prod")
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        removed.json(),
        json!({"message": "Connection removed successfully", "connection_id": "mongo-prod"})
    );
    assert_eq!(
        s.get("/db-connections/list/").await.json()["connections"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_dataset_endpoints() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    s.register("m", "mongo").await;

    for path in [
        "/datasets/list/?connection_id=i",
        "/datasets/list?connection_id=i",
    ] {
        let list = s.get(path).await;
        assert_eq!(list.status, StatusCode::OK, "{path}: {}", list.text);
        let list = list.json();
        let sensors = list["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dataset_name"] == "plant:sensors")
            .unwrap()
            .clone();
        assert_eq!(sensors["database_name"], "plant");
        assert_eq!(sensors["table_name"], "sensors");
        assert_eq!(sensors["tagKeyStr"], "");
        assert_eq!(sensors["tagValueStr"], "");
        assert_eq!(sensors["dataset_type"], "InfluxDB");
        assert_eq!(
            sensors["dataset_params"],
            json!({"bucket": "plant", "measurement": "sensors"})
        );
        assert!(sensors["dataset_description"]
            .as_str()
            .unwrap()
            .contains("sensors"));
    }
    let mongo = s.get("/datasets/list/?connection_id=m").await.json();
    assert_eq!(mongo["datasets"][0]["dataset_type"], "MongoDB");
    assert_eq!(mongo["datasets"][0]["dataset_params"]["database"], "plant");
    assert_eq!(
        s.get("/datasets/list/").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.get("/datasets/list/?connection_id=ghost").await.status,
        StatusCode::NOT_FOUND
    );

    // Detail: Mongo parameters, Influx aliases.
    let detail = s
        .get("/datasets/detail/?connection_id=m&mongo_database=plant&collection=sensors&time_field=_time")
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    let detail = detail.json();
    assert_eq!(detail["count"], SENSOR_RECORDS);
    assert_eq!(detail["start"], "2024-01-01T00:00:00.000Z");
    assert_eq!(detail["end"], "2024-01-01T00:00:04.999Z");
    assert_eq!(detail["bucket"], "plant");
    assert_eq!(detail["measurement"], "sensors");
    let columns: Vec<String> = serde_json::from_value(detail["columns"].clone()).unwrap();
    let mut sorted = columns.clone();
    sorted.sort();
    assert_eq!(columns, sorted);
    assert_eq!(detail["data"].as_array().unwrap().len(), 2);
    assert_eq!(detail["data"][0].as_array().unwrap().len(), columns.len());
    let influx = s
        .get("/datasets/detail/?connection_id=i&bucket_name=plant&measurement=sensors")
        .await
        .json();
    assert_eq!(influx["value"], SENSOR_RECORDS);
    assert_eq!(influx["time"], "2024-01-01T00:00:00.000Z");
    let missing = s
        .get("/datasets/detail/?connection_id=i&bucket_name=plant")
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.text.contains("table_name"), "{}", missing.text);
    let unknown = s
        .get("/datasets/detail/?connection_id=i&database_name=plant&table_name=nope")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Time range, with aliases and a tag filter echoed.
    let range = s
        .get("/datasets/time-range/?connection_id=i&bucket=plant&measurement=sensors&tag_key=device&tag_value=dev-00001")
        .await;
    assert_eq!(range.status, StatusCode::OK, "{}", range.text);
    assert_eq!(
        range.json(),
        json!({"queryStartStr": "2024-01-01T00:00:00.000Z", "queryEndStr": "2024-01-01T00:00:04.999Z",
               "databaseStr": "plant", "tableStr": "sensors", "tagKeyStr": "device", "tagValueStr": "dev-00001"})
    );
    let empty = s
        .get("/datasets/time-range?connection_id=i&database=plant&table=empty")
        .await;
    assert_eq!(empty.status, StatusCode::NOT_FOUND);
    assert!(empty.text.contains("no records"));
    // Hostile strings never reach a 500.
    let injection = s
        .get("/datasets/time-range/?connection_id=i&database=plant&table=cpu%22%3B%20DROP%20MEASUREMENT%20cpu%3B--")
        .await;
    assert_eq!(
        injection.status,
        StatusCode::NOT_FOUND,
        "{}",
        injection.text
    );
    let nul = s
        .get("/datasets/time-range/?connection_id=i&database=plant&table=a%00b")
        .await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST);
    assert!(nul.text.contains("control"));
    let long = format!(
        "/datasets/time-range/?connection_id=i&database=plant&table={}",
        "x".repeat(600)
    );
    assert_eq!(s.get(&long).await.status, StatusCode::BAD_REQUEST);
    let dup = s
        .get("/datasets/time-range/?connection_id=i&connection_id=j")
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_export_answers_from_the_manifest() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    let topic = s.topic(5);
    let url = format!(
        "/data/export/?connection_id=i&bucket=plant&measurement=sensors&kafka_brokers={}&send_topic={topic}",
        s.brokers
    );
    let answer = s.get(&url).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let a = answer.json();
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
        assert!(a.get(field).is_some(), "answer lacks {field}: {a}");
    }
    assert_eq!(a["totalMessages"], SENSOR_RECORDS); // json format: one record per message
    assert_eq!(a["sendTopicStr"], topic.as_str());
    assert_eq!(a["queryStartStr"], "2024-01-01T00:00:00.000Z");
    assert!(a["endTimeMillis"].as_i64() >= a["startTimeMillis"].as_i64());
    let id = a["exportId"].as_str().unwrap();
    let manifest = s.get(&format!("/v1/exports/{id}/manifest")).await;
    assert_eq!(manifest.status, StatusCode::OK);
    let manifest = manifest_of(&manifest.json());
    assert_eq!(manifest.chunks.len(), 45); // 48 jobs - 1 (drop_last) rounded to a multiple of 5
    let offsets: Vec<String> = serde_json::from_value(a["offsetsData"].clone()).unwrap();
    assert_eq!(offsets, manifest.offsets_data());
    assert_eq!(offsets.len(), 5);
    let status = s.get(&format!("/v1/exports/{id}")).await.json();
    assert_eq!(status["origin"], "legacy");
    verify(&s, manifest).await;

    // drop_last=F keeps all 48 jobs: rounded to 50 chunks.
    let answer = s.get(&format!("{url}&drop_last=F")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let id = answer.json()["exportId"].as_str().unwrap().to_owned();
    let manifest = manifest_of(&s.get(&format!("/v1/exports/{id}/manifest")).await.json());
    assert_eq!(manifest.chunks.len(), 50);

    // query-by-time reads the range first; start narrows it.
    let by_time = s
        .get(&format!(
            "/data/query-by-time?connection_id=i&database=plant&table=sensors&kafka_brokers={}&send_topic={topic}&format=jsonl",
            s.brokers
        ))
        .await;
    assert_eq!(by_time.status, StatusCode::OK, "{}", by_time.text);
    assert_eq!(by_time.json()["queryEndStr"], "2024-01-01T00:00:04.999Z");

    // Bad input.
    let missing = s
        .get("/data/export/?connection_id=i&database=plant&table=sensors")
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.text.contains("kafka_brokers") && missing.text.contains("send_topic"),
        "{}",
        missing.text
    );
    let bad_topic = s
        .get(&format!("/data/export/?connection_id=i&database=plant&table=sensors&kafka_brokers={}&send_topic=bad%20topic", s.brokers))
        .await;
    assert_eq!(bad_topic.status, StatusCode::BAD_REQUEST);
    assert!(bad_topic.text.contains("topic"));
    let bad_brokers = s
        .get("/data/export/?connection_id=i&database=plant&table=sensors&kafka_brokers=nohost&send_topic=t")
        .await;
    assert_eq!(bad_brokers.status, StatusCode::BAD_REQUEST);
    let bad_bool = s.get(&format!("{url}&drop_last=maybe")).await;
    assert_eq!(bad_bool.status, StatusCode::BAD_REQUEST);
    assert!(bad_bool.text.contains("drop_last"));
    let ghost = s
        .get(&format!("/data/export/?connection_id=ghost&database=plant&table=sensors&kafka_brokers={}&send_topic={topic}", s.brokers))
        .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
    let empty = s
        .get(&format!("/data/query-by-time/?connection_id=i&database=plant&table=empty&kafka_brokers={}&send_topic={topic}", s.brokers))
        .await;
    assert_eq!(empty.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_connections_and_datasets() {
    let s = TestServer::new().await;
    let created = s
        .post("/v1/connections", json!({"id": "m1", "db_type": "mongo", "url": "mongodb://app:PASSWORD123@fake:27017/", "database": "plant"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.headers["location"], "/v1/connections/m1");
    assert!(!created.text.contains("PASSWORD123"), "{}", created.text);
    let info = created.json();
    assert_eq!(info["url"], "mongodb://app:****@fake:27017/");
    assert_eq!(info["has_password"], true);
    assert_eq!(info["status"], "active");

    let dup = s
        .post(
            "/v1/connections",
            json!({"id": "m1", "db_type": "mongo", "url": "mongodb://fake/"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.json()["code"], "conflict");
    let typo = s
        .post(
            "/v1/connections",
            json!({"id": "x", "db_type": "mongo", "url": "mongodb://fake/", "pasword": "x"}),
        )
        .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(typo.json()["message"].as_str().unwrap().contains("pasword"));
    let wrong = s
        .post(
            "/v1/connections",
            json!({"id": "x", "db_type": "postgres", "url": "x"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let influx_only = s
        .post(
            "/v1/connections",
            json!({"id": "x", "db_type": "mongo", "url": "mongodb://fake/", "token": "t"}),
        )
        .await;
    assert_eq!(influx_only.status, StatusCode::BAD_REQUEST);

    let list = s.get("/v1/connections").await.json();
    assert_eq!(list["connections"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("PASSWORD123"));
    assert_eq!(
        s.get("/v1/connections/nope").await.status,
        StatusCode::NOT_FOUND
    );

    let datasets = s.get("/v1/connections/m1/datasets").await;
    assert_eq!(datasets.status, StatusCode::OK);
    assert_eq!(datasets.json()["datasets"].as_array().unwrap().len(), 4);
    let detail = s
        .get("/v1/connections/m1/datasets/plant/sensors?time_field=_time")
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    let detail = detail.json();
    assert_eq!(detail["count"], SENSOR_RECORDS);
    assert_eq!(detail["first"]["seq"], 0);
    assert_eq!(detail["start"], "2024-01-01T00:00:00Z");
    let range = s
        .get("/v1/connections/m1/datasets/plant/sensors/time-range")
        .await
        .json();
    assert_eq!(range["start_ns"], 1_704_067_200_000_000_000_i64);
    let half_tag = s
        .get("/v1/connections/m1/datasets/plant/sensors?tag_key=device")
        .await;
    assert_eq!(half_tag.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.get("/v1/connections/m1/datasets/plant/empty/time-range")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/v1/connections/nope/datasets").await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        s.delete("/v1/connections/m1").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete("/v1/connections/m1").await.status,
        StatusCode::NOT_FOUND
    );
}

fn export_body(topic: &str, table: &str) -> Value {
    json!({
        "connection": "i",
        "dataset": {"database": "plant", "table": table},
        "destination": {"topic": topic},
        "format": "jsonl",
        "jobs": 8,
        "workers": 2
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_export_runs_in_the_background_and_verifies() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    let topic = s.topic(4);
    let accepted = s.post("/v1/exports", export_body(&topic, "sensors")).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    let accepted = accepted.json();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["status_url"], format!("/v1/exports/{id}"));
    let status = s.wait_export(&id).await;
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["progress"]["records_done"], SENSOR_RECORDS);
    assert_eq!(status["plan"]["chunks"], 8);
    assert_eq!(status["request"]["drop_last"], true);
    assert_eq!(
        status["request"]["destination"]["brokers"],
        s.brokers.as_str()
    );
    let manifest = manifest_of(&status["manifest"]);
    assert_eq!(manifest.total_records, SENSOR_RECORDS);
    let served = manifest_of(&s.get(&format!("/v1/exports/{id}/manifest")).await.json());
    assert_eq!(served, manifest);
    let published = ldd_sink_kafka::manifest_topic::fetch_manifest(
        &s.brokers.as_str().into(),
        MANIFEST_TOPIC,
        &id,
    )
    .await
    .unwrap();
    assert_eq!(published, manifest);
    verify(&s, manifest).await;

    let list = s.get("/v1/exports").await.json();
    assert_eq!(list["exports"][0]["id"], id.as_str());
    assert!(list["exports"][0].get("manifest").is_none());
    assert_eq!(
        s.get("/v1/exports?state=running").await.json()["exports"],
        json!([])
    );
    assert_eq!(
        s.get("/v1/exports?state=bogus").await.status,
        StatusCode::BAD_REQUEST
    );

    // Bad requests.
    let mut reuse = export_body(&topic, "sensors");
    reuse["export_id"] = json!(id);
    assert_eq!(
        s.post("/v1/exports", reuse).await.status,
        StatusCode::CONFLICT
    );
    let mut ghost = export_body(&topic, "sensors");
    ghost["connection"] = json!("ghost");
    assert_eq!(
        s.post("/v1/exports", ghost).await.status,
        StatusCode::NOT_FOUND
    );
    let mut typo = export_body(&topic, "sensors");
    typo["destination"]["partitons"] = json!(3);
    let typo = s.post("/v1/exports", typo).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(typo.text.contains("partitons"));
    let mut zero = export_body(&topic, "sensors");
    zero["workers"] = json!(0);
    assert_eq!(
        s.post("/v1/exports", zero).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut format = export_body(&topic, "sensors");
    format["format"] = json!("xml");
    assert_eq!(
        s.post("/v1/exports", format).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.get("/v1/exports/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/v1/exports/nope/manifest").await.status,
        StatusCode::NOT_FOUND
    );

    // A dataset that does not exist fails in planning, with the cause.
    let missing = s
        .post("/v1/exports", export_body(&topic, "nope"))
        .await
        .json();
    let failed = s.wait_export(missing["id"].as_str().unwrap()).await;
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("does not exist"),
        "{failed}"
    );
    let no_manifest = s
        .get(&format!(
            "/v1/exports/{}/manifest",
            missing["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(no_manifest.status, StatusCode::CONFLICT);

    // Metrics count what was produced.
    let metrics = s.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.content_type.starts_with("text/plain"));
    let text = metrics.text;
    assert!(
        text.contains(&format!("ldd_records_produced_total {SENSOR_RECORDS}")),
        "{text}"
    );
    assert!(
        text.contains("ldd_exports{state=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(text.contains("ldd_exports{state=\"failed\"} 1"), "{text}");
    assert!(text.contains("ldd_chunk_duration_seconds_bucket"), "{text}");
    assert!(text.contains("ldd_bytes_produced_total"), "{text}");
    assert!(
        text.contains("ldd_export_errors_total{cause=\"source\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ldd_http_requests_total{status=\"404\"}"),
        "{text}"
    );
}

async fn wait_state(s: &TestServer, id: &str, state: &str) {
    for _ in 0..300 {
        if s.get(&format!("/v1/exports/{id}")).await.json()["state"] == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("export {id} never reached {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_big_export() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    let topic = s.topic(2);
    let accepted = s
        .post("/v1/exports", export_body(&topic, "huge"))
        .await
        .json();
    let id = accepted["id"].as_str().unwrap().to_owned();
    wait_state(&s, &id, "running").await;
    // Running, and reporting progress.
    for _ in 0..100 {
        let status = s.get(&format!("/v1/exports/{id}")).await.json();
        if status["progress"]["records_done"].as_u64().unwrap_or(0) > 0 {
            assert!(status["progress"]["records_per_sec"].as_f64().unwrap() > 0.0);
            assert!(status["progress"]["eta_ms"].as_u64().is_some());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancelled = s.delete(&format!("/v1/exports/{id}")).await;
    assert_eq!(cancelled.status, StatusCode::ACCEPTED, "{}", cancelled.text);
    let status = s.wait_export(&id).await;
    assert_eq!(status["state"], "cancelled", "{status}");
    assert!(status["progress"]["records_done"].as_u64().unwrap() < 1_000_000_000);
    assert_eq!(
        s.delete(&format!("/v1/exports/{id}")).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.get(&format!("/v1/exports/{id}/manifest")).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.delete("/v1/exports/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_export_resumes_where_it_stopped() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    let topic = s.topic(4);
    let mut body = export_body(&topic, "slow");
    body["workers"] = json!(1);
    let id = s.post("/v1/exports", body).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Stop it once some chunks are committed (each takes ~0.5 s, eight in all).
    let mut committed = 0;
    for _ in 0..200 {
        let status = s.get(&format!("/v1/exports/{id}")).await.json();
        committed = status["progress"]["chunks_done"].as_u64().unwrap_or(0);
        if committed >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(committed >= 2, "no chunk committed in 10 s");
    assert_eq!(
        s.delete(&format!("/v1/exports/{id}")).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(s.wait_export(&id).await["state"], "cancelled");

    let resumed = s.post(&format!("/v1/exports/{id}/resume"), json!({})).await;
    assert_eq!(resumed.status, StatusCode::ACCEPTED, "{}", resumed.text);
    assert_eq!(resumed.json()["id"], id.as_str());
    let status = s.wait_export(&id).await;
    assert_eq!(status["state"], "succeeded", "{status}");
    let manifest = manifest_of(&status["manifest"]);
    assert_eq!(manifest.total_records, SLOW_RECORDS);
    assert_eq!(manifest.chunks.len(), 8);
    // Chunks of the first run kept attempt 1; the rest ran again under later numbers.
    let first_run = manifest.chunks.iter().filter(|c| c.attempt == 1).count();
    assert!(first_run as u64 >= committed, "{:?}", manifest.chunks);
    assert!(first_run < 8, "nothing was resumed: {:?}", manifest.chunks);
    assert!(manifest
        .chunks
        .iter()
        .all(|c| c.attempt == 1 || c.attempt > 3));
    verify(&s, manifest).await;

    // A succeeded export, a running one's id, or an unknown id do not resume.
    assert_eq!(
        s.post(&format!("/v1/exports/{id}/resume"), json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.post("/v1/exports/nope/resume", json!({})).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_requires_the_token_everywhere_but_healthz() {
    let s = TestServer::with_token("0123456789abcdef-token").await;
    assert_eq!(
        s.call_with(Method::GET, "/healthz", None, None)
            .await
            .status,
        StatusCode::OK
    );
    for path in [
        "/db-connections/list",
        "/v1/connections",
        "/openapi.json",
        "/metrics",
        "/v1/exports",
        "/data/export/",
    ] {
        let denied = s.call_with(Method::GET, path, None, None).await;
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(denied.json()["code"], "unauthorized");
        assert!(denied.json()["message"]
            .as_str()
            .unwrap()
            .contains("Bearer"));
        assert_eq!(denied.headers["www-authenticate"], "Bearer");
        let wrong = s
            .call_with(Method::GET, path, None, Some("0123456789abcdef-tokeN"))
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(s.get("/db-connections/list").await.status, StatusCode::OK);
    assert_eq!(s.get("/v1/connections").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_connections_and_exports() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    s.register("m", "mongo").await;
    let topic = s.topic(2);
    let id = s
        .post("/v1/exports", export_body(&topic, "sensors"))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait_export(&id).await["state"], "succeeded");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = s.state.store().path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    // An export the previous process never finished (as after a crash).
    let mut stale = s.state.exports().get(&id).await.unwrap();
    stale.id = "crashed-export".into();
    stale.state = ExportState::Running;
    stale.manifest = None;
    s.state.store().save_export(&stale).await.unwrap();

    let s = s.restart().await;
    let list = s.get("/db-connections/list").await.json();
    assert_eq!(list["connections"].as_array().unwrap().len(), 2);
    // Not connected until first use; then active.
    assert_eq!(list["connections"][0]["status"], "pending");
    assert_eq!(
        s.get("/datasets/list/?connection_id=i").await.status,
        StatusCode::OK
    );
    assert_eq!(s.get("/v1/connections/i").await.json()["status"], "active");
    let old = s.get(&format!("/v1/exports/{id}")).await.json();
    assert_eq!(old["state"], "succeeded");
    assert_eq!(manifest_of(&old["manifest"]).total_records, SENSOR_RECORDS);
    let crashed = s.get("/v1/exports/crashed-export").await.json();
    assert_eq!(crashed["state"], "interrupted");
    assert!(crashed["error"].as_str().unwrap().contains("stopped"));

    // A server whose databases are down at start still lists its connections.
    let failing: server::connections::ConnectionFactory = std::sync::Arc::new(|_spec| {
        Box::pin(async { Err(server::ApiError::Upstream("connection refused".into())) })
    });
    let config = TestServer::config(&s.dir.0, &s.brokers, None);
    let down = server::AppState::with_connection_factory(config, failing)
        .await
        .unwrap();
    let router = server::router(down.clone());
    down.registry().clone().warm_up().await;
    let infos = down.registry().list();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].status, "unavailable");
    drop(router);
}

/// Serves `state` on a real socket; returns the address and the trigger of a graceful
/// shutdown.
async fn spawn_socket_server(
    state: server::AppState,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_socket_sse_and_graceful_shutdown() {
    let s = TestServer::new().await;
    s.register("i", "influx").await;
    let (addr, stop, task) = spawn_socket_server(s.state.clone()).await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    let list: Value = http
        .get(format!("{base}/db-connections/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["connections"][0]["connection_id"], "i");
    let range = http
        .get(format!(
            "{base}/datasets/time-range?connection_id=i&database=plant&table=sensors"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), reqwest::StatusCode::OK);

    // SSE: progress events while a big export runs, then `done` after the cancel.
    let topic = s.topic(2);
    let accepted: Value = http
        .post(format!("{base}/v1/exports"))
        .json(&export_body(&topic, "huge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    let mut events = http
        .get(format!("{base}/v1/exports/{id}/events"))
        .send()
        .await
        .unwrap();
    assert!(events.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut text = String::new();
    let mut cancelled = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Some(chunk) = tokio::time::timeout_at(deadline, events.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
        let moving = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .any(|d| d["progress"]["records_done"].as_u64().unwrap_or(0) > 0);
        if moving && !cancelled {
            let answer = http
                .delete(format!("{base}/v1/exports/{id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), reqwest::StatusCode::ACCEPTED);
            cancelled = true;
        }
    }
    assert!(text.contains("event: progress"), "{text}");
    assert!(text.contains("event: done"), "{text}");
    let data: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let moving = data
        .iter()
        .filter_map(|d| d["progress"]["records_done"].as_u64())
        .max()
        .unwrap();
    assert!(moving > 0, "no progress reported: {text}");
    let last = data.last().unwrap();
    assert_eq!(last["state"], "cancelled");

    // Graceful shutdown interrupts a running export and records it.
    let second: Value = http
        .post(format!("{base}/v1/exports"))
        .json(&export_body(&topic, "huge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = second["id"].as_str().unwrap().to_owned();
    wait_state(&s, &second, "running").await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
    let status = s.state.store().get_export(&second).await.unwrap().unwrap();
    assert_eq!(status.state, ExportState::Interrupted);
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());
}

/// `ldd consume --server` and `--trigger-url` against a served export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_reads_manifests_from_the_server() {
    let s = TestServer::with_token("consume-test-token-0123").await;
    s.register("i", "influx").await;
    let (addr, stop, task) = spawn_socket_server(s.state.clone()).await;
    let topic = s.topic(3);
    let id = s
        .post("/v1/exports", export_body(&topic, "sensors"))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait_export(&id).await["state"], "succeeded");

    let (base, brokers) = (format!("http://{addr}"), s.brokers.clone());
    let trigger = format!(
        "{base}/data/export/?connection_id=i&database=plant&table=sensors&kafka_brokers={brokers}&send_topic={topic}"
    );
    let outputs = tokio::task::spawn_blocking(move || {
        let ldd = || assert_cmd::Command::cargo_bin("ldd").unwrap();
        let by_server = ldd()
            .args([
                "consume",
                "--server",
                &base,
                "--export-id",
                &id,
                "--brokers",
                &brokers,
                "--quiet",
            ])
            .env("LDD_TOKEN", "consume-test-token-0123")
            .output()
            .unwrap();
        let no_token = ldd()
            .args([
                "consume",
                "--server",
                &base,
                "--export-id",
                &id,
                "--brokers",
                &brokers,
                "--quiet",
            ])
            .env_remove("LDD_TOKEN")
            .output()
            .unwrap();
        let triggered = ldd()
            .args([
                "consume",
                "--trigger-url",
                &trigger,
                "--token",
                "consume-test-token-0123",
                "--quiet",
            ])
            .args(["--output-format", "jsonl", "--output", "-"])
            .output()
            .unwrap();
        (by_server, no_token, triggered)
    })
    .await
    .unwrap();
    let (by_server, no_token, triggered) = outputs;
    let err = String::from_utf8_lossy(&by_server.stderr);
    assert!(by_server.status.success(), "{err}");
    assert!(err.contains("verified: OK"), "{err}");
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_token.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&no_token.stderr)
    );
    let err = String::from_utf8_lossy(&triggered.stderr);
    assert!(triggered.status.success(), "{err}");
    assert!(err.contains("verified: OK"), "{err}");
    let lines = String::from_utf8_lossy(&triggered.stdout).lines().count() as u64;
    assert_eq!(lines, SENSOR_RECORDS);
    stop.send(()).unwrap();
    task.await.unwrap();
}
