//! The OpenAPI document: served at `GET /v1/openapi.json` behind the token,
//! equal to the committed `docs/openapi.json` (refresh it with
//! `ORCA_UPDATE_OPENAPI=1 cargo test --test openapi`), OpenAPI 3.1, and
//! naming every route the router serves.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{up, TestWs};
use serde_json::Value;

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_committed_one() {
    let ws = TestWs::fast();
    let (_child, info) = up(&ws);
    let token = std::fs::read_to_string(ws.ws.token_path()).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/v1/openapi.json", info.address);
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "served without the token");
    let resp = http
        .get(&url)
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, orca::api::openapi::document());
    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("ORCA_UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), &text).unwrap();
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json differs from the served document: \
         ORCA_UPDATE_OPENAPI=1 cargo test --test openapi rewrites it"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_names_every_route() {
    let doc = orca::api::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every `.route("…", method(…))` of the router.
    let router =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/mod.rs"))
            .unwrap();
    let mut routed = BTreeSet::new();
    let flat: String = router.split_whitespace().collect::<Vec<_>>().join(" ");
    for piece in flat.split(".route(").skip(1) {
        let path = piece.split('"').nth(1).unwrap().to_string();
        let rest = piece.split_once(',').unwrap().1;
        let call = rest.split("),").next().unwrap();
        for method in ["get", "post", "put", "delete", "patch"] {
            if call.contains(&format!("{method}(")) {
                routed.insert((path.clone(), method.to_string()));
            }
        }
    }
    assert!(routed.len() >= 30, "read only {} routes", routed.len());
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (p.clone(), m.clone()))
        })
        .collect();
    assert_eq!(routed, documented, "the router and the document differ");
    // Every reference resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        let target = r.split('"').next().unwrap();
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "unresolved {target}"
        );
    }
    // The token everywhere but health and the signed webhooks.
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            let open = op["security"] == serde_json::json!([{}]);
            let should = p == "/healthz" || p.contains("/events/{subscription}");
            assert_eq!(open, should, "{m} {p}: security {}", op["security"]);
        }
    }
}
