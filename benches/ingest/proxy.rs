//! A counting proxy in front of Azurite: forwards every request unchanged
//! (Shared Key signatures do not cover the host) and notes what each
//! answer carried, so a digest run's reads are counted as the service
//! answered them, not as the code under test says.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use testkit::{DEV_ACCOUNT, DEV_KEY};
use warp::http::{HeaderMap, Method, Response, StatusCode};
use warp::path::FullPath;
use warp::Filter;

/// One request through the proxy.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    /// The table in the path (`Tables` for table operations, `$batch` for
    /// entity-group transactions).
    pub table: String,
    /// A query's `$filter`, decoded.
    pub filter: Option<String>,
    /// Entities in the answer: a query's `value`, or 1 for one entity.
    pub entities: usize,
}

pub struct CountingProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Exchange>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CountingProxy {
    pub async fn start(upstream_port: u16) -> Self {
        let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let client = reqwest::Client::new();
        let noted = log.clone();
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |method: Method,
                      path: FullPath,
                      query: String,
                      headers: HeaderMap,
                      body: Bytes| {
                    let (client, log) = (client.clone(), noted.clone());
                    async move {
                        forward(
                            &client,
                            upstream_port,
                            &log,
                            method,
                            path,
                            query,
                            headers,
                            body,
                        )
                        .await
                    }
                },
            );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's port").port();
        let server = tokio::spawn(warp::serve(route).incoming(listener).run());
        Self { port, log, server }
    }

    /// The connection string that sends a client through the proxy.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};\
             TableEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
            self.port
        )
    }

    /// How many requests went through since the last [`CountingProxy::take`].
    pub fn count(&self) -> usize {
        self.log.lock().expect("the proxy's log").len()
    }

    /// What went through since the last call.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.log.lock().expect("the proxy's log"))
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    client: &reqwest::Client,
    upstream_port: u16,
    log: &Mutex<Vec<Exchange>>,
    method: Method,
    path: FullPath,
    query: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    let mut url = format!("http://127.0.0.1:{upstream_port}{}", path.as_str());
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    let mut request = client.request(method.clone(), url).body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let (status, answer_headers, answer) = match request.send().await {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            (status, headers, r.bytes().await.unwrap_or_default())
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            HeaderMap::new(),
            Bytes::from(e.to_string()),
        ),
    };
    let entities = if method == Method::GET && status.is_success() {
        match serde_json::from_slice::<serde_json::Value>(&answer) {
            Ok(serde_json::Value::Object(o)) => match o.get("value") {
                Some(serde_json::Value::Array(values)) => values.len(),
                _ => 1,
            },
            _ => 0,
        }
    } else {
        0
    };
    let table = path
        .as_str()
        .trim_start_matches('/')
        .split_once('/')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let table = table
        .split(['(', '/'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let filter = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "$filter")
        .map(|(_, v)| v.into_owned());
    log.lock().expect("the proxy's log").push(Exchange {
        method: method.to_string(),
        table,
        filter,
        entities,
    });
    let mut response = Response::new(answer);
    *response.status_mut() = status;
    for (name, value) in &answer_headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive"
        ) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
