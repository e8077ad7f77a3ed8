//! The web console: login codes, sessions, CSRF and CSP over plain HTTP
//! (reqwest), then the pages themselves in headless Chromium (Debian's
//! `chromium` + `chromium-driver`, driven over WebDriver): a run's tree
//! moving, interrupt, a manual verdict, an alert's delivery, an agent told
//! something. Screenshots land in target/console-screenshots/.

mod common;

use common::webdriver::Browser;
use common::{assert_exit, orca_cmd, KillOnDrop, TestWs};
use orca_actors::journal::Event;
use orca_actors::model::Surface;
use serde_json::{json, Value};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `orca ui --no-open --json`: the login URL.
fn ui(ws: &TestWs) -> String {
    let o = orca_cmd(ws)
        .args(["ui", "--no-open", "--json"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).expect("orca ui --json");
    assert_eq!(v["expires_in_seconds"], 60);
    v["url"].as_str().expect("a url").to_string()
}

fn csp(r: &reqwest::Response) -> String {
    r.headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The session cookie (`name=value`) a login answered with.
async fn login(http: &reqwest::Client, url: &str) -> String {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/");
    assert!(csp(&r).contains("default-src 'none'"));
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_codes_sessions_csrf_and_csp() {
    let ws = TestWs::fast();
    // Nothing runs: orca ui says so and exits 1.
    let o = orca_cmd(&ws).args(["ui", "--no-open"]).output().unwrap();
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing is running"));

    let (_daemon, info) = common::up(&ws);
    let base = format!("http://{}", info.address);
    let http = http();
    let token = std::fs::read_to_string(ws.ws.token_path()).unwrap();
    let token = token.trim();

    // Every console page and asset: 401 without a session, with a CSP.
    for p in [
        "/",
        "/index.html",
        "/assets/app.js",
        "/assets/app.css",
        "/no-such-page",
        "/login",
        "/login?code=0000",
    ] {
        let r = http.get(format!("{base}{p}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{p}");
        assert!(csp(&r).contains("script-src 'self'"), "{p}");
        // The bearer token is not a console credential either.
        let r = http
            .get(format!("{base}{p}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{p} with the token");
    }
    // /healthz stays open.
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A code works once.
    let url = ui(&ws);
    assert!(url.starts_with(&format!("{base}/login?code=")), "{url}");
    let cookie = login(&http, &url).await;
    assert!(cookie.starts_with(&format!(
        "orca_session_{}=",
        info.address.rsplit(':').next().unwrap()
    )));
    let again = http.get(&url).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 401, "a second use of a code");
    assert!(again.headers().get("set-cookie").is_none());

    // With the session: the page, its assets; no token anywhere; small.
    let mut first_load = 0;
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(csp(&page).contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    first_load += html.len();
    assert!(!html.contains(token), "the token is in the page");
    let csrf = html
        .split("name=\"orca-csrf\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page carries its CSRF token")
        .to_string();
    assert_eq!(csrf.len(), 64);
    for a in ["/assets/app.js", "/assets/app.css"] {
        let r = http
            .get(format!("{base}{a}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{a}");
        assert!(!csp(&r).is_empty());
        let body = r.text().await.unwrap();
        assert!(!body.contains(token));
        assert!(!body.contains("localStorage") && !body.contains("sessionStorage"));
        first_load += body.len();
    }
    assert!(first_load < 200 * 1024, "first load {first_load} bytes");
    println!("console first load: {first_load} bytes (uncompressed)");

    // /v1 takes the cookie for reads.
    let r = http
        .get(format!("{base}/v1/fleet/runs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(!csp(&r).is_empty());
    let r = http
        .get(format!("{base}/v1/fleet/runs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A run to act on (submitted with the token).
    let spec = "name = \"held\"\n[[tasks]]\nid = \"wait\"\ncommand = 'while [ ! -e \"$ORCA_WORKSPACE/go\" ]; do sleep 0.02; done'\n";
    let r: Value = http
        .post(format!("{base}/v1/fleet/runs?source=held.toml"))
        .bearer_auth(token)
        .body(spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = r["run"].as_str().expect("submitted").to_string();
    let pause = format!("{base}/v1/fleet/runs/{run}/pause");
    // Changes with the cookie need the CSRF token …
    let r = http
        .post(&pause)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "csrf");
    // … and this origin.
    let r = http
        .post(&pause)
        .header("cookie", &cookie)
        .header("x-orca-csrf", &csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .post(&pause)
        .header("cookie", &cookie)
        .header("x-orca-csrf", &csrf)
        .header("origin", &base)
        .header("sec-fetch-site", "same-origin")
        .header("x-orca-surface", "cli")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    // Journaled as the console's, whatever the browser claimed.
    let paused = ws.journal().into_iter().find_map(|e| match e.event {
        Event::RunPaused { run: r, surface } if r == run => Some(surface),
        _ => None,
    });
    assert_eq!(paused, Some(Surface::Web));
    // A session cannot mint login codes.
    let r = http
        .post(format!("{base}/v1/console/codes"))
        .header("cookie", &cookie)
        .header("x-orca-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Logs of an attempt, through the API the console reads.
    let r = http
        .get(format!(
            "{base}/v1/fleet/runs/{run}/tasks/wait/logs?stream=nope"
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Signing out ends the session.
    let r = http
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .header("x-orca-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    std::fs::write(ws.path("go"), "").unwrap();
}

/// `orca up` with extra environment (the alert adapter's URL and secret),
/// once it serves.
fn up_with(ws: &TestWs, env: &[(&str, String)]) -> (KillOnDrop, String) {
    let mut child = orca_cmd(ws)
        .arg("up")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("orca up");
    let info = common::wait_daemon_json(ws, child.id(), &mut child);
    (KillOnDrop(child), format!("http://{}", info.address))
}

/// Clears the action toasts so screenshots show the page.
async fn clear_flash(b: &Browser) {
    b.js("document.getElementById('flash').replaceChildren()", vec![])
        .await;
}

fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

const AGENT: &str = "id = \"helper\"\ndisplay_name = \"Helper\"\n[[routes]]\non = \"inbox\"\naction = \"note\"\ntext = \"told: {{event.text}}\"\n";

const SPEC: &str = r#"
name = "console-demo"
labels = { team = "ops" }
[[tasks]]
id = "gate"
command = 'echo "gate waiting"; while [ ! -e "$ORCA_WORKSPACE/go" ]; do sleep 0.02; done; echo "gate done"'
[[tasks]]
id = "hang"
command = 'while [ ! -e "$ORCA_WORKSPACE/never" ]; do sleep 0.02; done'
[[tasks]]
id = "review"
command = "echo reviewed"
scorer = { kind = "manual" }
[[tasks]]
id = "human"
command = '''printf '{"type":"metadata","needs_human":{"reason":"needs a deploy key"}}\n{"type":"done"}\n' '''
"#;

/// The state shown on the tree node at `path`.
const NODE_STATE: &str = "const li = document.querySelector(`li[data-path=\"${arguments[0]}\"]`); \
    return li ? li.querySelector('.st').textContent : '';";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium() {
    let capture = common::capture::Capture::start();
    let ws = TestWs::new(
        "[run]\ngrace_seconds = 0.5\n[journal]\nsync = \"never\"\n[alerts]\nenabled = true\n\
         routes = [{ events = [\"needs_human\"], adapter = \"hook\" }]\n\
         [alerts.adapters.hook]\nkind = \"webhook\"\nurl_env = \"T_HOOK\"\nsecret_env = \"T_HOOK_SECRET\"\nrate_limit = 100\n",
    );
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
    );
    let (_daemon, base) = up_with(
        &ws,
        &[("T_HOOK", capture.url("/hook")), ("T_HOOK_SECRET", secret)],
    );
    std::fs::create_dir_all(ws.path("agents")).unwrap();
    std::fs::write(ws.path("agents/helper.toml"), AGENT).unwrap();
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "create"])
            .arg(ws.path("agents/helper.toml"))
            .output()
            .unwrap(),
        0,
    );
    let shots = screenshots();
    let b = Browser::start().await;

    // Log in with a code: the console opens on the runs list.
    b.goto(&ui(&ws)).await;
    assert_eq!(b.url().await, format!("{base}/"));
    b.wait(
        "the runs list",
        "return document.getElementById('runs') !== null",
        vec![],
    )
    .await;
    b.wait(
        "the live feed",
        "return document.getElementById('conn').textContent === 'live'",
        vec![],
    )
    .await;
    // Nothing about the session is readable by script.
    let leaks = b
        .js("return document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)", vec![])
        .await;
    assert_eq!(leaks, json!("{}{}"));

    // A run appears in the list while the page is open.
    let token = std::fs::read_to_string(ws.ws.token_path()).unwrap();
    let submitted: Value = http()
        .post(format!(
            "{base}/v1/fleet/runs?source=demo.toml&max_workers=4"
        ))
        .bearer_auth(token.trim())
        .body(SPEC)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = submitted["run"].as_str().expect("submitted").to_string();
    b.wait(
        "the run in the list",
        "return [...document.querySelectorAll('#runs tr')].some(tr => tr.dataset.key === arguments[0])",
        vec![json!(run)],
    )
    .await;
    // Filters: by label, then by a status it does not have.
    b.js("const l = document.getElementById('f-label'); l.value = 'team=ops'; l.dispatchEvent(new Event('input'));", vec![]).await;
    b.wait(
        "the label filter keeps it",
        "return document.querySelectorAll('#runs tr').length === 1",
        vec![],
    )
    .await;
    clear_flash(&b).await;
    b.screenshot(&shots.join("runs.png")).await;
    b.js("const s = document.getElementById('f-status'); s.value = 'cancelled'; s.dispatchEvent(new Event('change'));", vec![]).await;
    b.wait(
        "the status filter hides it",
        "return document.querySelectorAll('#runs tr').length === 0",
        vec![],
    )
    .await;

    // The run's page: its tree moves as the run does.
    b.goto(&format!("{base}/#/run/{run}")).await;
    let gate = format!("/runs/{run}/attempts/gate:1");
    let state = b
        .wait("the gate attempt's node", NODE_STATE, vec![json!(gate)])
        .await;
    assert!(
        ["starting", "running"].contains(&state.as_str().unwrap_or_default()),
        "{state}"
    );
    std::fs::write(ws.path("go"), "").unwrap();
    b.wait(
        "the gate attempt to end pass",
        "const li = document.querySelector(`li[data-path=\"${arguments[0]}\"]`); return li && li.querySelector('.st').textContent === 'pass';",
        vec![json!(gate)],
    )
    .await;
    // Its task row follows from the events alone: no task is read again
    // over HTTP for them (only a verdict, below, needs a read).
    b.wait(
        "the gate task's row to say pass",
        "const r = document.querySelector('#tasks .vrow[data-task=gate]'); return r && r.children[2].textContent === 'pass' && r.children[4].textContent.startsWith('pass');",
        vec![],
    )
    .await;
    let task_reads = b
        .js(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/tasks/')).length",
            vec![],
        )
        .await;
    assert_eq!(task_reads, json!(0), "task rows patched from the events");

    // Interrupt the hanging attempt from its node: confirmed, then skip.
    let hang = format!("/runs/{run}/attempts/hang:1");
    b.wait(
        "the hang attempt running",
        "const li = document.querySelector(`li[data-path=\"${arguments[0]}\"]`); return li && li.querySelector('.st').textContent === 'running';",
        vec![json!(hang)],
    )
    .await;
    b.click(
        "the interrupt button",
        &format!("li[data-path=\"{hang}\"] button[data-action=interrupt]"),
    )
    .await;
    b.wait(
        "the confirmation",
        "return document.getElementById('confirm').open",
        vec![],
    )
    .await;
    b.click("confirm", "#confirm-ok").await;
    b.wait(
        "the hang attempt to end skip",
        "const li = document.querySelector(`li[data-path=\"${arguments[0]}\"]`); return li && li.querySelector('.st').textContent === 'skip';",
        vec![json!(hang)],
    )
    .await;

    // A manual verdict from the task list.
    b.click(
        "the review task's pass button",
        "#tasks .vrow[data-task=review] button[data-action=pass]",
    )
    .await;
    b.wait(
        "the confirmation",
        "return document.getElementById('confirm').open",
        vec![],
    )
    .await;
    b.js(
        "document.getElementById('confirm-input').value = 'looks right';",
        vec![],
    )
    .await;
    b.click("confirm", "#confirm-ok").await;
    b.wait(
        "the verdict on the receipt",
        "const r = document.querySelector('#tasks .vrow[data-task=review]'); return r && r.textContent.includes('verdict pass');",
        vec![],
    )
    .await;
    b.wait(
        "the timeline",
        "return document.querySelectorAll('#timeline li').length > 3",
        vec![],
    )
    .await;
    b.js("window.scrollTo(0, 0)", vec![]).await;
    clear_flash(&b).await;
    b.screenshot(&shots.join("run.png")).await;
    // Both actions were journaled as the console's.
    let events = ws.journal();
    let web = events
        .iter()
        .filter(|e| format!("{:?}", e.event).contains("surface: Web"))
        .count();
    assert!(
        web >= 2,
        "interrupt and verdict journaled with surface web ({web})"
    );

    // An attempt: its log tail and receipt.
    b.goto(&format!("{base}/#/attempt/{run}/gate/1")).await;
    b.wait(
        "the gate's log",
        "const l = document.getElementById('log'); return l && l.textContent.includes('gate done');",
        vec![],
    )
    .await;
    b.wait(
        "the gate's receipt",
        "return document.getElementById('receipt').textContent.includes('\"result\": \"pass\"')",
        vec![],
    )
    .await;
    clear_flash(&b).await;
    b.screenshot(&shots.join("attempt.png")).await;

    // Alerts: the needs_human alert and its delivery to the webhook.
    b.goto(&format!("{base}/#/alerts")).await;
    b.wait(
        "the alert's delivery",
        "return [...document.querySelectorAll('#alerts .delivery')].some(d => d.textContent.startsWith('delivered'))",
        vec![],
    )
    .await;
    clear_flash(&b).await;
    b.screenshot(&shots.join("alerts.png")).await;

    // An agent: told something with the CLI, the page shows it.
    b.goto(&format!("{base}/#/agent/helper")).await;
    b.wait(
        "the agent's page",
        "return document.getElementById('agent-state').textContent !== ''",
        vec![],
    )
    .await;
    assert_exit(
        &orca_cmd(&ws)
            .args(["agent", "tell", "helper", "hello console"])
            .output()
            .unwrap(),
        0,
    );
    b.wait(
        "the agent's note",
        "return document.getElementById('agent-notes').textContent.includes('told: hello console')",
        vec![],
    )
    .await;
    clear_flash(&b).await;
    b.screenshot(&shots.join("agent.png")).await;
    b.goto(&format!("{base}/#/tree")).await;
    b.wait(
        "the whole tree",
        "return document.querySelector('li[data-path=\"/agents/helper\"]') !== null",
        vec![],
    )
    .await;
    clear_flash(&b).await;
    b.screenshot(&shots.join("tree.png")).await;

    // The same page at a phone's width.
    b.js("window.location.hash = '#/runs'", vec![]).await;
    b.quit().await;
    let phone = Browser::start_sized(390, 844).await;
    phone.goto(&ui(&ws)).await;
    phone
        .wait(
            "the runs list",
            "return document.querySelectorAll('#runs tr').length > 0",
            vec![],
        )
        .await;
    let overflow = phone
        .js(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await;
    assert_eq!(overflow, json!(true), "the runs list fits a phone's width");
    phone.screenshot(&shots.join("runs-phone.png")).await;
    phone.quit().await;
    std::fs::write(ws.path("never"), "").unwrap();
}
