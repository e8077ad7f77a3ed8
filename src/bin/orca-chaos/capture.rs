//! A real HTTP server on 127.0.0.1 that receives the daemon's alert
//! webhooks and keeps, for each request, its `webhook-id` and the ids of
//! the alerts its body carried. Answers 200 after `delay` (so a kill finds
//! deliveries in flight). Runs on a thread of its own (its own runtime);
//! stopped when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::invariants::Captured;

type Log = Arc<Mutex<Vec<Captured>>>;

#[derive(Clone)]
struct Shared {
    log: Log,
    delay: Duration,
}

pub struct Capture {
    pub addr: SocketAddr,
    log: Log,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Capture {
    pub fn start(delay: Duration) -> anyhow::Result<Capture> {
        let log: Log = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = Shared {
            log: log.clone(),
            delay,
        };
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                    return;
                };
                let Ok(addr) = listener.local_addr() else {
                    return;
                };
                addr_tx.send(addr).ok();
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
            .map_err(|_| anyhow::anyhow!("the capture server did not bind 127.0.0.1"))?;
        Ok(Capture {
            addr,
            log,
            _stop: stop_tx,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Captured> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> &'static str {
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let alerts = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v["data"]["alerts"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x["id"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    if let Ok(mut l) = shared.log.lock() {
        l.push(Captured { webhook_id, alerts });
    }
    tokio::time::sleep(shared.delay).await;
    "ok"
}
