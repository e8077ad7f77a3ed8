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
        // Events are externally tagged: `{"TaskEnqueued": {fields}}`.
        let fields = match serde_json::to_value(&self.event) {
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
