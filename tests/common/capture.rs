//! A real HTTP server on 127.0.0.1 that captures every request (alerts'
//! Slack, PagerDuty and webhook posts) and answers from a script: a status
//! with headers and a body, or holding the request open.
//!
//! It runs on a thread of its own (its own runtime), so synchronous tests
//! that drive the real binary can use it; waits are on a condition
//! variable, bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// How the server answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    /// Status, extra headers, body.
    Full(u16, Vec<(&'static str, String)>, String),
    /// Never answers (until the client goes away).
    Hold,
}

#[derive(Default)]
struct Inner {
    log: Mutex<Vec<Received>>,
    changed: Condvar,
    /// Path → replies for its next requests, in order (then 200).
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
}

/// The running server (stopped when dropped: the thread's runtime ends).
pub struct Capture {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Capture {
    /// Binds 127.0.0.1:0 and serves; returns once bound.
    pub fn start() -> Capture {
        let inner = Arc::new(Inner::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).ok();
                let app = axum::Router::new().fallback(handle).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the capture server bound");
        Capture {
            addr,
            inner,
            _stop: stop_tx,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next requests to `path` get `replies`, in order.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.inner
            .script
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Received> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Requests to paths under `prefix` so far.
    pub fn to(&self, prefix: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// Waits (bounded by `limit`) until `pred` holds over every request so
    /// far; returns them.
    pub fn wait(&self, limit: Duration, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        let mut log = self.inner.log.lock().unwrap();
        loop {
            if pred(&log) {
                return log.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the capture server did not see what was expected within {limit:?}; it saw {} request(s): {:#?}",
                log.len(),
                log.iter().map(|r| (&r.path, String::from_utf8_lossy(&r.body))).collect::<Vec<_>>()
            );
            log = self.inner.changed.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Waits (at most `limit`) until `pred` holds; whether it did.
    pub fn wait_until(&self, limit: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut log = self.inner.log.lock().unwrap();
        loop {
            if pred(&log) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = self.inner.changed.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Waits until paths under `prefix` got `n` requests.
    pub fn wait_for(&self, prefix: &str, n: usize, limit: Duration) -> Vec<Received> {
        self.wait(limit, |log| {
            log.iter().filter(|r| r.path.starts_with(prefix)).count() >= n
        })
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let received = Received {
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: Instant::now(),
    };
    let reply = inner
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Reply::Status(200));
    {
        inner.log.lock().unwrap().push(received);
        inner.changed.notify_all();
    }
    match reply {
        Reply::Status(code) => (status(code), "ok").into_response(),
        Reply::Full(code, extra, body) => {
            let mut resp = (status(code), body).into_response();
            for (k, v) in extra {
                if let Ok(v) = v.parse() {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        Reply::Hold => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("a valid status")
}
