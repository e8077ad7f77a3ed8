//! Fuzz entry points for the API's request bodies: the same parsing
//! functions the handlers call (not the router, not the actors behind).
//! `crate::fuzzing` lists them; see docs/fuzzing.md.

use orca_actors::fuzzing::split_line;
use orca_actors::spec::{OrcaConfig, ValidateContext};

use super::{actors, agents, alerts, fleet};

/// `POST /v1/fleet/runs`: the first line is the `Content-Type`, the second
/// the `source` query parameter, the rest the body; the text then goes
/// through `ops::prepare` (check, validate, defaults) as the handler does.
pub fn api_submit(data: &[u8]) {
    let (content_type, rest) = split_line(data);
    let (source, body) = split_line(rest);
    let content_type = String::from_utf8_lossy(content_type);
    let source = String::from_utf8_lossy(source);
    let Ok((text, format)) = fleet::spec_text(&content_type, &source, body) else {
        return;
    };
    let config = OrcaConfig::default();
    let root = std::env::temp_dir();
    let ctx = ValidateContext::workspace(&root, &config);
    let settings = orca_actors::services::Settings::from_config(&config);
    let prepared = orca_actors::ops::prepare(
        orca_actors::ops::SubmitRequest {
            text: &text,
            format,
            source: source.into_owned(),
            max_workers: None,
            stale_after: None,
            surface: orca_actors::model::Surface::Api,
            parent: None,
        },
        &ctx,
        &settings,
    );
    match prepared {
        Ok((sub, _)) => assert!(sub.max_workers > 0, "a run with no worker slot"),
        Err(e) => {
            // The 422's message and details.
            let e = super::ApiError::from(e);
            assert_eq!(e.code, "invalid_spec");
        }
    }
}

/// `POST …/tasks/{task}/verdict` and `POST …/stop`.
pub fn api_verdict(data: &[u8]) {
    if let Ok(b) = fleet::verdict_body(data) {
        let note = orca_actors::model::bounded(&b.note, 2000);
        assert!(note.len() <= 2000 + 4, "note not bounded: {}", note.len());
    }
    let _ = fleet::stop_body(data);
}

/// `POST /v1/actors/messages` `{path, message}` and the agents' steering
/// verbs (`POST /v1/agents/{id}/{verb}`, the first line the verb).
pub fn api_control(data: &[u8]) {
    if let Ok(b) = actors::message_body(data) {
        let _ = b.path.parse::<orca_actors::path::ActorPath>();
        let _ = orca_actors::control::ControlMessage::from_json(b.message);
    }
    let (verb, body) = split_line(data);
    let _ = agents::steer_message(&String::from_utf8_lossy(verb), body);
}

/// The agents' request bodies: a verified webhook's event (its body),
/// a tool call (`POST /v1/agents/{id}/tools/{tool}`: the first line the
/// tool), and `POST /v1/alerts` / `POST /v1/alerts/test`.
pub fn api_agent(data: &[u8]) {
    let event = agents::webhook_event("sub", "msg_1", data);
    assert!(event.get("payload").is_some());
    let (tool, body) = split_line(data);
    if let Ok(call) = agents::tool_call(&String::from_utf8_lossy(tool), body) {
        let _ = call.key();
    }
    let _ = alerts::raise_body(data);
    let _ = alerts::probe_body(data);
}
