//! Always-on agent identities (docs/agents.md): durable actors that wake on
//! fleet events, timers, signed webhooks, file changes and messages, keep
//! commitments, start runs, and can be steered.
//!
//! | module | what |
//! |---|---|
//! | [`spec`] | the agent spec (TOML / JSON), parsed field by field and checked |
//! | [`events`] | its journal events, derived ids (wakes, intents, runs) |
//! | [`explain`] | what it watches, is doing, is blocked on (`orca agent explain`, list) |
//! | [`state`] | its state, a pure fold; every agent's, as the fleet view holds them |
//! | [`timer`] | timer rules (every, cron, missed ticks) as pure functions of a given clock |
//! | [`fleet`] | journal facts → named fleet events (`receipt.fail`, `alert.stale`, …) |
//! | [`decide`] | its decisions: (state, spec, command, now) → events, effects |
//! | [`think`] | thinking agents: the prompt, the think run's spec, MCP flags, tool calls |
//! | [`webhook`] | Standard Webhooks verification of a webhook subscription's requests |
//! | [`actor`] | the `agent:<id>` actor that journals them and acts |
//!
//! The `agents` supervisor is [`crate::agents`].

pub mod actor;
pub mod decide;
pub mod events;
pub mod explain;
pub mod fleet;
pub mod spec;
pub mod state;
pub mod think;
pub mod timer;
pub mod webhook;
