//! A local HTTP receiver: what a webhook endpoint or a Teams Workflows URL
//! looks like from our side. It records every request (path, headers, body,
//! arrival time) and answers as scripted: a fixed status, a sequence of
//! statuses, or no answer at all (a receiver that hangs). It can be stopped
//! and started again on the same port (a receiver that is down for a while).

use bytes::Bytes;
use http::HeaderMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;
use warp::http::{Response, StatusCode};
use warp::Filter;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// This status with a `Retry-After` (seconds).
    RetryAfter(u16, u64),
    /// No answer, ever (the connection stays open).
    Hang,
    /// This status with the request quoted back — its path and query and
    /// every header, `Authorization` included — as many receivers do in
    /// their error bodies.
    Echo(u16),
    /// This status with the request's body quoted back (a validation
    /// error that repeats the payload: the customer's details in it).
    EchoBody(u16),
    /// This status, after this long (a slow receiver).
    After(std::time::Duration, u16),
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Answers for the next requests, in order; then `otherwise`.
    script: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Listening on a free loopback port, answering 200.
    pub async fn start() -> Self {
        Self::start_on(
            0,
            Arc::new(Mutex::new(State {
                otherwise: Some(Answer::Status(200)),
                ..State::default()
            })),
        )
        .await
    }

    async fn start_on(port: u16, state: Arc<Mutex<State>>) -> Self {
        let shared = state.clone();
        let route = warp::path::full()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |path: warp::path::FullPath, headers: HeaderMap, body: Bytes| {
                    let state = shared.clone();
                    async move {
                        let echo = serde_json::json!({
                            "error": "bad request",
                            "request": {
                                "path": path.as_str(),
                                "headers": headers
                                    .iter()
                                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                                    .collect::<Vec<_>>(),
                            },
                        })
                        .to_string();
                        let echoed_body = String::from_utf8_lossy(&body).into_owned();
                        let answer = {
                            let mut state = state.lock().unwrap();
                            state.received.push(Received {
                                at: Instant::now(),
                                path: path.as_str().to_owned(),
                                headers,
                                body,
                            });
                            state
                                .script
                                .pop_front()
                                .or(state.otherwise.clone())
                                .unwrap_or(Answer::Status(200))
                        };
                        let (status, retry_after, body) = match answer {
                            Answer::Status(status) => (status, None, None),
                            Answer::RetryAfter(status, seconds) => (status, Some(seconds), None),
                            Answer::Echo(status) => (status, None, Some(echo)),
                            Answer::EchoBody(status) => (
                                status,
                                None,
                                Some(format!(
                                    "{{\"error\":\"invalid payload\",\"payload\":{}}}",
                                    serde_json::Value::String(echoed_body)
                                )),
                            ),
                            Answer::After(wait, status) => {
                                tokio::time::sleep(wait).await;
                                (status, None, None)
                            }
                            Answer::Hang => {
                                std::future::pending::<()>().await;
                                unreachable!()
                            }
                        };
                        let mut response = Response::builder()
                            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                            .header("content-type", "application/json");
                        if let Some(seconds) = retry_after {
                            response = response.header("retry-after", seconds.to_string());
                        }
                        response
                            .body(body.unwrap_or_else(|| {
                                format!("{{\"received\":true,\"status\":{status}}}")
                            }))
                            .expect("a response")
                    }
                },
            );
        let (addr, stop) = crate::serve_locally(route, port).await;
        Self {
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers from now on (after any scripted ones).
    pub fn answer(&self, answer: Answer) {
        self.state.lock().unwrap().otherwise = Some(answer);
    }

    /// Answers for the next requests, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Stops listening (connections are refused) until [`Receiver::restart`].
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Listens again on the same port, keeping what it received.
    pub async fn restart(&mut self) {
        self.stop();
        // The old server lets go of the port once its connections end.
        for _ in 0..100 {
            if std::net::TcpListener::bind(self.addr).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let mut fresh = Self::start_on(self.addr.port(), self.state.clone()).await;
        self.stop = fresh.stop.take();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
