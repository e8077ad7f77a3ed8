//! `orca ui`: a one-use login link to the web console of the running daemon
//! (or embedded `orca run`), opened in a browser when a person is there.

use std::io::IsTerminal as _;
use std::path::Path;

use clap::Args;
use serde_json::{json, Value};

use crate::exit;

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Print the link without opening a browser.
    #[arg(long)]
    pub no_open: bool,
    /// Print `{"url", "expires_in_seconds"}`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ws_flag: Option<&Path>, args: UiArgs) -> anyhow::Result<i32> {
    let c = super::control::client(ws_flag)?;
    let v: Value = super::runtime()?.block_on(c.post("/v1/console/codes", json!({})))?;
    let url = v["url"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server answered no login link"))?
        .to_string();
    if args.json {
        println!("{v}");
    } else {
        println!("{url}");
    }
    if !args.no_open && std::io::stdout().is_terminal() {
        open(&url);
    }
    Ok(exit::OK)
}

/// Opens `url` with `$BROWSER`, else `xdg-open`; a failure only warns (the
/// link is printed).
fn open(url: &str) {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "xdg-open".into());
    let spawned = std::process::Command::new(&browser)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("orca: cannot open a browser with {browser} ({e}); open the link above");
    }
}
