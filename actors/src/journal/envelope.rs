//! What the journal stores per event ([`Envelope`]), what callers hand it
//! ([`NewEvent`]) and what an append answers ([`AppendAck`]).

use serde::{Deserialize, Serialize};

use super::event::Event;
use crate::model::Timestamp;

/// One journaled event with its place in the journal.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Global, gapless, strictly increasing from 1.
    pub seq: u64,
    /// When the writer accepted the batch (every event of a batch shares it;
    /// never earlier than the previous batch's).
    pub at: Timestamp,
    /// The actor path that appended it (`/runs/r-1/attempts/lint:2`).
    pub actor: String,
    pub event: Event,
}

impl Envelope {
    /// The JSON object `orca journal export` prints: `seq`, `at` (RFC 3339),
    /// `actor`, `type` ([`Event::type_name`]) and then the event's own
    /// fields, flat, so `jq 'select(.type == "TaskEnqueued") | .task'` works.
    pub fn export_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        let mut out = Map::new();
        out.insert("seq".into(), Value::from(self.seq));
        out.insert("at".into(), Value::String(self.at.rfc3339()));
        out.insert("actor".into(), Value::String(self.actor.clone()));
        out.insert("type".into(), Value::String(self.event.type_name().into()));
        // Events are externally tagged: `{"TaskEnqueued": {fields}}`; an
        // alert event is one level deeper (`{"Alert": {"Raised": {…}}}`)
        // and is shown by its own name, its fields flat like the others.
        let tagged = match &self.event {
            Event::Alert(a) => serde_json::to_value(a),
            Event::Agent(a) => serde_json::to_value(a),
            e => serde_json::to_value(e),
        };
        let fields = match tagged {
            Ok(Value::Object(tagged)) => tagged.into_iter().next().map(|(_, v)| v),
            Ok(_) | Err(_) => None,
        };
        match fields {
            Some(Value::Object(fields)) => {
                for (k, v) in fields {
                    // Event fields never use these names (a test checks);
                    // should one appear, the envelope's value wins and the
                    // field is kept under `event.<name>`.
                    if matches!(k.as_str(), "seq" | "at" | "actor" | "type") {
                        out.insert(format!("event.{k}"), v);
                    } else {
                        out.insert(k, v);
                    }
                }
            }
            Some(other) => {
                out.insert("value".into(), other);
            }
            None => {}
        }
        Value::Object(out)
    }
}

impl Envelope {
    /// Reads back what [`Envelope::export_json`] wrote (the API's event
    /// stream carries it): a client follows typed events, not loose JSON.
    /// `at` comes back to the millisecond the export keeps.
    pub fn from_export_json(v: &serde_json::Value) -> Result<Envelope, String> {
        use serde_json::{Map, Value};
        let obj = v.as_object().ok_or("an event is a JSON object")?;
        let field = |k: &str| obj.get(k).ok_or_else(|| format!("the event has no `{k}`"));
        let seq = field("seq")?.as_u64().ok_or("`seq` is not a number")?;
        let at: Timestamp =
            serde_json::from_value(field("at")?.clone()).map_err(|e| format!("`at`: {e}"))?;
        let actor = field("actor")?
            .as_str()
            .ok_or("`actor` is not text")?
            .to_string();
        let kind = field("type")?.as_str().ok_or("`type` is not text")?;
        let mut fields = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "seq" | "at" | "actor" | "type" => {}
                other => {
                    let name = other.strip_prefix("event.").unwrap_or(other);
                    fields.insert(name.to_string(), v.clone());
                }
            }
        }
        let body = match fields.remove("value") {
            Some(value) if fields.is_empty() => value,
            Some(value) => {
                fields.insert("value".into(), value);
                Value::Object(fields)
            }
            None => Value::Object(fields),
        };
        // An alert event is nested one level deeper (legacy `AlertRaised`s
        // have no `id`).
        let alert = crate::alert::AlertEvent::variant_of(kind)
            .filter(|_| kind != "AlertRaised" || body.get("id").is_some());
        // So is an agent event (`AgentWoke` is `Agent: {Woke: …}`).
        let agent = kind.strip_prefix("Agent").filter(|_| alert.is_none());
        let mut tagged = Map::new();
        match (alert, agent) {
            (Some(variant), _) => {
                let mut inner = Map::new();
                inner.insert(variant.to_string(), body);
                tagged.insert("Alert".to_string(), Value::Object(inner));
            }
            (None, Some(variant)) => {
                let mut inner = Map::new();
                inner.insert(variant.to_string(), body);
                tagged.insert("Agent".to_string(), Value::Object(inner));
            }
            (None, None) => {
                tagged.insert(kind.to_string(), body);
            }
        }
        let event: Event = serde_json::from_value(Value::Object(tagged))
            .map_err(|e| format!("a {kind} event: {e}"))?;
        Ok(Envelope {
            seq,
            at,
            actor,
            event,
        })
    }
}

/// An event to append, with the path of the actor appending it.
#[derive(Clone, PartialEq, Debug)]
pub struct NewEvent {
    pub actor: String,
    pub event: Event,
}

impl NewEvent {
    pub fn new(actor: impl Into<String>, event: Event) -> Self {
        Self {
            actor: actor.into(),
            event,
        }
    }
}

/// The answer to an append: the batch is durable under the sync mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppendAck {
    /// Seq of the batch's first event.
    pub first_seq: u64,
    /// Seq of the batch's last event (`first_seq + len - 1`).
    pub last_seq: u64,
    /// The timestamp every event of the batch carries.
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_comes_back_from_its_export_json() {
        for (i, e) in crate::journal::fixture::sample_events()
            .into_iter()
            .chain(crate::journal::fixture::sample_alert_events())
            .enumerate()
        {
            let env = Envelope {
                seq: i as u64 + 1,
                // The export keeps milliseconds.
                at: Timestamp(1_795_000_000_123_000_000),
                actor: e.actor,
                event: e.event,
            };
            let back = Envelope::from_export_json(&env.export_json()).unwrap();
            assert_eq!(back, env);
        }
        assert!(Envelope::from_export_json(&serde_json::json!({"seq": 1})).is_err());
        assert!(Envelope::from_export_json(&serde_json::json!({
            "seq": 1, "at": "2026-12-05T00:00:00Z", "actor": "/", "type": "NoSuchEvent"
        }))
        .is_err());
    }
}
