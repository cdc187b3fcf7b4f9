//! The HTTP client: InfluxQL over `/query`, Flux over `/api/v2/query`, writes and ping.
//!
//! Large reads are streamed: InfluxQL with `chunked=true` answers one JSON object per line
//! (at most `chunk_size` rows each), which is parsed line by line as the bytes arrive; Flux
//! answers annotated CSV, parsed incrementally by [`super::flux_csv`]. Neither buffers a
//! whole response.
//!
//! The `influxdb2` crate serves the InfluxDB 2.x management API (organisations, buckets,
//! predicate deletes). Its query functions are not used, not even for small queries:
//! `query`/`query_raw` read the whole body into a `String` and `unwrap()` that read (a
//! dropped connection would panic), and `query_raw_iter` also buffers the whole body and
//! returns a `fallible_iterator::FallibleIterator`, a trait `influxdb2` does not re-export.
//! One streaming parser for every Flux answer is simpler and keeps memory bounded.
//!
//! Tokens and passwords go only into request headers; nothing here logs them.

use std::fmt;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use influxdb2::RequestError;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use super::config::InfluxConfig;
use super::flux_csv::{AnnotatedCsv, CsvReader, FluxRow};
use crate::error::{Error, Result};

/// Longest server error message kept, in bytes.
const MAX_ERROR_BYTES: usize = 4 * 1024;

/// One line of a `/query` answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueryResponse {
    /// One result per statement (or per chunk of a statement's result).
    #[serde(default)]
    pub(crate) results: Vec<StatementResult>,
    /// A request-level error.
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// The result (or one chunk of it) of one InfluxQL statement.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatementResult {
    /// Position of the statement in the request.
    #[serde(default)]
    pub(crate) statement_id: usize,
    /// The series it returned.
    #[serde(default)]
    pub(crate) series: Vec<Series>,
    /// The statement's error.
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// One series of an InfluxQL result.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Series {
    /// Measurement (or `databases`, `measurements` for SHOW statements).
    #[serde(default)]
    pub(crate) name: String,
    /// Column names, `time` first for SELECT.
    #[serde(default)]
    pub(crate) columns: Vec<String>,
    /// Rows.
    #[serde(default)]
    pub(crate) values: Vec<Vec<serde_json::Value>>,
}

#[derive(Clone)]
enum Auth {
    None,
    Token(String),
    Basic { username: String, password: String },
}

/// HTTP access to one InfluxDB server.
#[derive(Clone)]
pub(crate) struct HttpClient {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    org: Option<String>,
    timeout: Duration,
    flux: influxdb2::Client,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::None => "none",
            Auth::Token(_) => "token",
            Auth::Basic { .. } => "basic",
        };
        f.debug_struct("HttpClient")
            .field("base", &self.base.as_str())
            .field("auth", &auth)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

fn http_error(context: &str, source: reqwest::Error) -> Error {
    Error::Http {
        context: context.to_owned(),
        source: source.without_url(),
    }
}

fn timeout_error(context: &str, timeout: Duration) -> Error {
    Error::Server {
        context: context.to_owned(),
        status: 504,
        message: format!(
            "no answer within {} s (raise request_timeout_secs if the server is just slow)",
            timeout.as_secs()
        ),
    }
}

/// The server's message from an error body: the `error`/`message` of a JSON body, the
/// message of a Flux CSV error table, or the text itself, shortened.
pub(crate) fn server_message(body: &str) -> String {
    let text = body.trim();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        for key in ["error", "message"] {
            if let Some(serde_json::Value::String(msg)) = map.get(key) {
                return shorten(msg);
            }
        }
    }
    // Flux: "error\n<message>" (InfluxDB 1.8) or an error table ",error,reference\n,<message>,<ref>",
    // both CSV.
    let mut records = Vec::new();
    let mut csv = CsvReader::default();
    if csv.feed(text.as_bytes(), &mut records).is_ok() && csv.finish(&mut records).is_ok() {
        let mut rows = records
            .iter()
            .filter(|r| !r.first().is_some_and(|c| c.starts_with('#')));
        while let Some(header) = rows.next() {
            if let Some(col) = header.iter().position(|c| c == "error") {
                if let Some(msg) = rows.next().and_then(|r| r.get(col)) {
                    return shorten(msg);
                }
            }
        }
    }
    shorten(text)
}

fn shorten(text: &str) -> String {
    if text.len() <= MAX_ERROR_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Maps an InfluxQL statement or request error; a missing database is `NotFound`.
///
/// InfluxDB 2.x does not say "database not found": a database no bucket is mapped to (no
/// DBRP mapping, virtual or explicit) answers "default retention policy not set for: NAME".
pub(crate) fn statement_error(context: &str, message: &str) -> Error {
    if message.starts_with("database not found") {
        return Error::NotFound(format!("{context}: {message}"));
    }
    if message.starts_with("default retention policy not set") {
        return Error::NotFound(format!(
            "{context}: {message} (on InfluxDB 2.x: no bucket is mapped to this database; \
             check the name, or map the bucket with a DBRP mapping)"
        ));
    }
    Error::Server {
        context: context.to_owned(),
        status: 200,
        message: message.to_owned(),
    }
}

async fn error_from_response(context: &str, response: Response) -> Error {
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(b) => String::from_utf8_lossy(&b[..b.len().min(64 * 1024)]).into_owned(),
        Err(e) => format!("(could not read the error body: {e})"),
    };
    let message = server_message(&body);
    if status == 404 && message.contains("database not found") {
        return Error::NotFound(format!("{context}: {message}"));
    }
    let mut message = if message.is_empty() {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned()
    } else {
        message
    };
    // Say what to fix: the server's own text ("Unauthorized") does not name the credentials.
    match status {
        401 => message.push_str(
            " (the server refused the credentials: check the token, or the username and password)",
        ),
        403 => message.push_str(" (the credentials lack a permission this needs)"),
        _ => {}
    }
    Error::Server {
        context: context.to_owned(),
        status,
        message,
    }
}

pub(crate) fn v2_error(context: &str, err: RequestError) -> Error {
    match err {
        RequestError::ReqwestProcessing { source } => http_error(context, source),
        RequestError::Http { status, text } => Error::Server {
            context: context.to_owned(),
            status: status.as_u16(),
            message: server_message(&text),
        },
        RequestError::Serializing { source } => Error::Decode(format!("{context}: {source}")),
        RequestError::Deserializing { text } => {
            Error::Decode(format!("{context}: bad Flux answer: {text}"))
        }
    }
}

/// A byte stream of a response body with an idle timeout per piece.
struct Body {
    inner: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    timeout: Duration,
    context: String,
}

impl Body {
    fn new(response: Response, timeout: Duration, context: &str) -> Self {
        Body {
            inner: response
                .bytes_stream()
                .map(|r| r.map(|b| b.to_vec()))
                .boxed(),
            timeout,
            context: context.to_owned(),
        }
    }

    /// The next piece, `None` at the end.
    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        match tokio::time::timeout(self.timeout, self.inner.next()).await {
            Err(_) => Err(timeout_error(&self.context, self.timeout)),
            Ok(None) => Ok(None),
            Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
            Ok(Some(Err(e))) => Err(http_error(&self.context, e)),
        }
    }
}

/// Splits a byte stream into lines without holding more than one line (plus one piece).
#[derive(Default)]
pub(crate) struct LineBuffer {
    buf: Vec<u8>,
    scanned: usize,
}

impl LineBuffer {
    /// Adds bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, without its `\n`.
    pub(crate) fn next_line(&mut self) -> Option<Vec<u8>> {
        // Lines of a chunked answer are megabytes long: find the newline with SIMD and move
        // the (short) rest out rather than copying the line.
        let end = self.scanned + memchr::memchr(b'\n', &self.buf[self.scanned..])?;
        let rest = self.buf.split_off(end + 1);
        let mut line = std::mem::replace(&mut self.buf, rest);
        line.pop();
        self.scanned = 0;
        Some(line)
    }

    /// Marks everything held as scanned (no newline in it).
    pub(crate) fn scanned_all(&mut self) {
        self.scanned = self.buf.len();
    }

    /// What is left at the end of the stream.
    pub(crate) fn rest(&mut self) -> Option<Vec<u8>> {
        self.scanned = 0;
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

/// Parses one line of a `/query` answer and fails on any error in it.
pub(crate) fn parse_query_line(context: &str, line: &[u8]) -> Result<Vec<StatementResult>> {
    let response: QueryResponse = serde_json::from_slice(line).map_err(|e| {
        Error::Decode(format!(
            "{context}: the /query answer is not InfluxDB JSON ({e}): {}",
            shorten(&String::from_utf8_lossy(&line[..line.len().min(200)]))
        ))
    })?;
    if let Some(err) = response.error {
        return Err(statement_error(context, &err));
    }
    for result in &response.results {
        if let Some(err) = &result.error {
            return Err(statement_error(context, err));
        }
    }
    Ok(response.results)
}

/// A stream of InfluxQL statement results, one item per answer chunk.
pub(crate) type QueryStream = BoxStream<'static, Result<Vec<StatementResult>>>;
/// A stream of Flux rows, one item per received piece of the answer.
pub(crate) type FluxStream = BoxStream<'static, Result<Vec<FluxRow>>>;

impl HttpClient {
    /// A client for `config` (validated first).
    pub(crate) fn new(config: &InfluxConfig) -> Result<Self> {
        config.validate()?;
        let mut base = config.parsed_url()?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let auth = match (&config.token, &config.username, &config.password) {
            (Some(token), _, _) => Auth::Token(token.clone()),
            (None, Some(username), Some(password)) => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            _ => Auth::None,
        };
        let timeout = config.request_timeout();
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(30)))
                .tcp_keepalive(Duration::from_secs(60))
        };
        let http = builder()
            .build()
            .map_err(|e| http_error("building the InfluxDB HTTP client", e))?;
        // 1.8 accepts `username:password` as a token on its v2 API.
        let flux_token = match &auth {
            Auth::None => String::new(),
            Auth::Token(t) => t.clone(),
            Auth::Basic { username, password } => format!("{username}:{password}"),
        };
        let flux = influxdb2::ClientBuilder::with_builder(
            builder().timeout(timeout),
            base.as_str().trim_end_matches('/'),
            config.org.clone().unwrap_or_default(),
            flux_token,
        )
        .build()
        .map_err(|e| Error::InvalidInput(format!("building the InfluxDB Flux client: {e}")))?;
        Ok(HttpClient {
            http,
            base,
            auth,
            org: config.org.clone(),
            timeout,
            flux,
        })
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|e| Error::InvalidInput(format!("InfluxDB url + `{path}`: {e}")))
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::None => request,
            Auth::Token(token) => request.header("Authorization", format!("Token {token}")),
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        }
    }

    /// Sends a request and waits (at most the timeout) for the status line; non-2xx
    /// answers become errors carrying the server's message.
    async fn send(&self, request: RequestBuilder, context: &str) -> Result<Response> {
        let response = tokio::time::timeout(self.timeout, self.authorize(request).send())
            .await
            .map_err(|_| timeout_error(context, self.timeout))?
            .map_err(|e| http_error(context, e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(error_from_response(context, response).await)
        }
    }

    /// Pings the server; returns its version (`X-Influxdb-Version`) when it says it.
    pub(crate) async fn ping(&self) -> Result<Option<String>> {
        let context = "pinging InfluxDB";
        let response = self.send(self.http.get(self.url("ping")?), context).await?;
        Ok(response
            .headers()
            .get("X-Influxdb-Version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    fn query_request(
        &self,
        db: Option<&str>,
        q: &str,
        chunk_size: Option<usize>,
    ) -> Result<RequestBuilder> {
        let mut params: Vec<(&str, String)> = vec![("epoch", "ns".into())];
        if let Some(db) = db {
            params.push(("db", db.to_owned()));
        }
        if let Some(n) = chunk_size {
            params.push(("chunked", "true".into()));
            params.push(("chunk_size", n.to_string()));
        }
        tracing::debug!(query = q, "InfluxQL");
        Ok(self
            .http
            .post(self.url("query")?)
            .query(&params)
            .form(&[("q", q)]))
    }

    /// Runs small InfluxQL statements (answer read whole); fails on any statement error.
    pub(crate) async fn influxql(
        &self,
        db: Option<&str>,
        q: &str,
        context: &str,
    ) -> Result<Vec<StatementResult>> {
        let request = self.query_request(db, q, None)?.timeout(self.timeout);
        let response = self.send(request, context).await?;
        let body = response.bytes().await.map_err(|e| http_error(context, e))?;
        parse_query_line(context, &body)
    }

    /// Whether `/query` answers (`Ok(false)` when it does not exist; an error when the
    /// server refuses the credentials).
    pub(crate) async fn probe_influxql(&self) -> Result<bool> {
        let context = "probing InfluxQL (/query)";
        let request = self
            .query_request(None, "SHOW DATABASES", None)?
            .timeout(self.timeout);
        match self.send(request, context).await {
            Ok(response) => {
                let body = response.bytes().await.map_err(|e| http_error(context, e))?;
                Ok(serde_json::from_slice::<QueryResponse>(&body).is_ok())
            }
            Err(Error::Server { status, .. }) if ![401, 403].contains(&status) => Ok(false),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Streams an InfluxQL query with `chunked=true`: one item per answer chunk (at most
    /// `chunk_size` rows), parsed as it arrives.
    pub(crate) async fn influxql_stream(
        &self,
        db: &str,
        q: &str,
        chunk_size: usize,
        context: &str,
    ) -> Result<QueryStream> {
        let request = self.query_request(Some(db), q, Some(chunk_size))?;
        let response = self.send(request, context).await?;
        let body = Body::new(response, self.timeout, context);
        struct State {
            body: Body,
            lines: LineBuffer,
            done: bool,
        }
        let state = State {
            body,
            lines: LineBuffer::default(),
            done: false,
        };
        let stream = futures::stream::try_unfold(state, |mut st| async move {
            loop {
                if let Some(line) = st.lines.next_line() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let results = parse_query_line(&st.body.context, &line)?;
                    return Ok(Some((results, st)));
                }
                st.lines.scanned_all();
                if st.done {
                    return match st.lines.rest() {
                        Some(rest) => {
                            let results = parse_query_line(&st.body.context, &rest)?;
                            Ok(Some((results, st)))
                        }
                        None => Ok(None),
                    };
                }
                match st.body.next().await? {
                    Some(bytes) => st.lines.push(&bytes),
                    None => st.done = true,
                }
            }
        });
        Ok(stream.boxed())
    }

    /// Runs a small Flux query (catalogue, counts, first/last) and collects its rows.
    pub(crate) async fn flux_collect(&self, query: &str, context: &str) -> Result<Vec<FluxRow>> {
        let mut stream = self.flux_stream(query, context).await?;
        let mut out = Vec::new();
        while let Some(rows) = stream.next().await {
            out.extend(rows?);
        }
        Ok(out)
    }

    /// The `influxdb2` client, for the InfluxDB 2.x management API (buckets, delete).
    pub(crate) fn v2(&self) -> &influxdb2::Client {
        &self.flux
    }

    /// Whether Flux answers: `Ok(None)` when it does, `Ok(Some(why))` when it does not
    /// (no endpoint, or disabled), an error when the server refuses the credentials.
    pub(crate) async fn probe_flux(&self) -> Result<Option<String>> {
        let context = "probing Flux (/api/v2/query)";
        match self.flux_stream("buckets() |> limit(n: 1)", context).await {
            Ok(mut stream) => {
                while let Some(rows) = stream.next().await {
                    if let Err(e) = rows {
                        return Ok(Some(e.to_string()));
                    }
                }
                Ok(None)
            }
            Err(Error::Server {
                status: 401,
                message,
                ..
            }) => Err(Error::Server {
                context: context.into(),
                status: 401,
                message,
            }),
            Err(e) => Ok(Some(e.to_string())),
        }
    }

    /// Streams a Flux query's annotated CSV answer, parsed as it arrives.
    pub(crate) async fn flux_stream(&self, query: &str, context: &str) -> Result<FluxStream> {
        tracing::debug!(query, "Flux");
        let body = serde_json::json!({
            "query": query,
            "type": "flux",
            "dialect": {
                "header": true,
                "delimiter": ",",
                "annotations": ["datatype", "group", "default"],
            },
        });
        let mut request = self
            .http
            .post(self.url("api/v2/query")?)
            .header("Accept", "application/csv")
            .json(&body);
        if let Some(org) = &self.org {
            request = request.query(&[("org", org)]);
        }
        let response = self.send(request, context).await?;
        struct State {
            body: Body,
            csv: CsvReader,
            tables: AnnotatedCsv,
            done: bool,
        }
        let state = State {
            body: Body::new(response, self.timeout, context),
            csv: CsvReader::default(),
            tables: AnnotatedCsv::default(),
            done: false,
        };
        let stream = futures::stream::try_unfold(state, |mut st| async move {
            loop {
                if st.done {
                    return Ok(None);
                }
                let mut records = Vec::new();
                match st.body.next().await? {
                    Some(bytes) => st.csv.feed(&bytes, &mut records)?,
                    None => {
                        st.csv.finish(&mut records)?;
                        st.done = true;
                    }
                }
                let mut rows = Vec::with_capacity(records.len());
                for record in records {
                    if let Some(row) = st.tables.push(record).map_err(|e| match e {
                        Error::Server {
                            status, message, ..
                        } => Error::Server {
                            context: st.body.context.clone(),
                            status,
                            message,
                        },
                        other => other,
                    })? {
                        rows.push(row);
                    }
                }
                if !rows.is_empty() {
                    return Ok(Some((rows, st)));
                }
            }
        });
        Ok(stream.boxed())
    }

    #[cfg(feature = "fixtures")]
    /// Writes line protocol through the v1 API (`/write?db=..&precision=ns`).
    pub(crate) async fn write_v1(&self, db: &str, lines: String) -> Result<()> {
        let context = format!("writing to InfluxDB database `{db}`");
        let request = self
            .http
            .post(self.url("write")?)
            .query(&[("db", db), ("precision", "ns")])
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(lines)
            .timeout(self.timeout);
        self.send(request, &context).await.map(drop)
    }

    #[cfg(feature = "fixtures")]
    /// Writes line protocol through the v2 API (`/api/v2/write?bucket=..&precision=ns`).
    pub(crate) async fn write_v2(&self, bucket: &str, lines: String) -> Result<()> {
        let context = format!("writing to InfluxDB bucket `{bucket}`");
        let mut params = vec![("bucket", bucket), ("precision", "ns")];
        if let Some(org) = &self.org {
            params.push(("org", org));
        }
        let request = self
            .http
            .post(self.url("api/v2/write")?)
            .query(&params)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(lines)
            .timeout(self.timeout);
        self.send(request, &context).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_extracted() {
        assert_eq!(
            server_message(r#"{"error":"error parsing query: found SELEC"}"#),
            "error parsing query: found SELEC"
        );
        assert_eq!(
            server_message(r#"{"code":"unauthorized","message":"unauthorized access"}"#),
            "unauthorized access"
        );
        assert_eq!(
            server_message("error\nfailed to initialize execute state: no database\n"),
            "failed to initialize execute state: no database"
        );
        assert_eq!(
            server_message("error\n\"loc 1:5-1:11: expected RPAREN, got EOF\"\n"),
            "loc 1:5-1:11: expected RPAREN, got EOF"
        );
        assert_eq!(
            server_message(
                "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"bad, thing\",897\n"
            ),
            "bad, thing"
        );
        assert_eq!(server_message("  plain text \n"), "plain text");
        assert!(server_message(&"x".repeat(10_000)).len() < 5_000);
    }

    #[test]
    fn statement_errors_map_missing_databases_to_not_found() {
        assert!(matches!(
            statement_error("ctx", "database not found: x"),
            Error::NotFound(_)
        ));
        assert!(matches!(
            statement_error("ctx", "default retention policy not set for: x"),
            Error::NotFound(_)
        ));
        assert!(matches!(
            statement_error("ctx", "boom"),
            Error::Server { status: 200, .. }
        ));
    }

    #[test]
    fn chunked_lines_parse_and_errors_surface() {
        let body = concat!(
            r#"{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[1,1.5],[2,2]]}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[3,null]]}]}]}"#,
            "\n"
        );
        let mut lines = LineBuffer::default();
        let mut rows = 0;
        // Feed in awkward pieces.
        for piece in body.as_bytes().chunks(7) {
            lines.push(piece);
            while let Some(line) = lines.next_line() {
                let results = parse_query_line("ctx", &line).unwrap();
                rows += results[0].series[0].values.len();
            }
            lines.scanned_all();
        }
        assert!(lines.rest().is_none());
        assert_eq!(rows, 3);

        let err = parse_query_line(
            "reading",
            br#"{"results":[{"statement_id":0,"error":"database not found: nodb"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        let err = parse_query_line("reading", br#"{"error":"error parsing query: x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("error parsing query"), "{err}");
        let err = parse_query_line("reading", b"<html>")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not InfluxDB JSON"), "{err}");
    }

    #[test]
    fn debug_hides_credentials() {
        let mut cfg = InfluxConfig::new("http://127.0.0.1:1");
        cfg.token = Some("very-secret".into());
        let client = HttpClient::new(&cfg).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("very-secret"), "{text}");
        assert!(text.contains("token"));
    }
}
