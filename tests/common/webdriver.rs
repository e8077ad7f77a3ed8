//! A small WebDriver client (W3C protocol over reqwest with rustls: no
//! OpenSSL, no aws-lc) driving Debian's headless Chromium through
//! chromedriver, for the console's tests. Waits poll the DOM against a
//! deadline; nothing sleeps for readiness.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// chromedriver and one Chromium session; both end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

/// Why the browser tests cannot run here, said plainly.
fn missing(what: &str) -> ! {
    panic!(
        "{what} is not installed: the console's browser tests need Debian's `chromium` and \
         `chromium-driver` (scripts/test.sh installs them: apt-get install -y chromium chromium-driver)"
    )
}

fn find(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        if n.starts_with('/') {
            return std::path::Path::new(n).exists().then(|| n.to_string());
        }
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(n))
                .find(|c| c.exists())
                .map(|c| c.display().to_string())
        })
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (1280×800).
    pub async fn start() -> Browser {
        Self::start_sized(1280, 800).await
    }

    pub async fn start_sized(width: u32, height: u32) -> Browser {
        let driver_bin = find(&["chromedriver", "/usr/lib/chromium/chromedriver"])
            .unwrap_or_else(|| missing("chromedriver"));
        let chrome = find(&["chromium", "chromium-browser", "/usr/lib/chromium/chromium"])
            .unwrap_or_else(|| missing("chromium"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // Its own process group, with the Chromium it starts: a failing
        // test kills the whole group and leaves no browser behind.
        let driver =
            std::os::unix::process::CommandExt::process_group(&mut Command::new(driver_bin), 0)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        // Ready when /status says so (bounded).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.json::<Value>());
            if let Some(body) = ready {
                if body.await.is_ok_and(|v| v["value"]["ready"] == true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": ["--headless", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", format!("--window-size={width},{height}")],
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Polls `script` until it returns something truthy (not null, false,
    /// "" or 0); returns it. Panics with `what` and the last value past the
    /// deadline.
    pub async fn wait(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let v = self.js(script, args.clone()).await;
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let body = self
                    .js(
                        "return document.getElementById('view')?.innerText.slice(0, 2000)",
                        vec![],
                    )
                    .await;
                panic!("waited 40s for {what}; the page shows: {body}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it).
    pub async fn click(&self, what: &str, css: &str) {
        self.wait(
            what,
            "const e = document.querySelector(arguments[0]); if (!e) return false; e.scrollIntoView({block:'center'}); return true;",
            vec![json!(css)],
        )
        .await;
        let el = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_string();
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("png");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.driver.id()) {
            // SAFETY: signals the process group this Browser started.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
