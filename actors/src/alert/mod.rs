//! Alert delivery: routing typed alert classes to Slack, PagerDuty and
//! signed webhooks, with the journal as the outbox (docs/alerts.md).
//!
//! Everything here is pure or actor-free, for the `alert-router` actor to
//! drive:
//!
//! | module | what |
//! |---|---|
//! | [`events`] | the router's journal events (bincode-safe), alert ids, condition keys |
//! | [`config`] | the effective config of a run / the workspace, routing, severity, env checks |
//! | [`router`] | `RouterState` (a fold) and `decide` (command → events + effects); retry, rate limit, group, repeat, resolve |
//! | [`payload`] | Slack, PagerDuty and Standard Webhooks payloads, the escalation draft, safe commands |
//! | [`sign`] | Standard Webhooks signatures |
//! | [`secret`] | `Secret` (redacted `Debug`), env lookups, credentials, `scrub` |
//! | [`endpoint`] | https, or http to loopback only |
//! | [`send`] | the reqwest sender and `deliver` |
//! | [`dry_run`] | `orca alert dry-run`'s rendering |
//! | [`probe`] | `orca alert test`: one test notification, not journaled |
//! | [`view`] | alerts as operators read them (`orca alert list`, `GET /v1/alerts`) |
//!
//! `events`, `config`, `router`, `payload`, `sign`, `secret`, `endpoint`,
//! `view` and `dry_run` import neither ractor nor tokio; [`actor`] is the
//! `alert-router` actor that drives them from the journal.

pub mod actor;
pub mod config;
pub mod dry_run;
pub mod endpoint;
pub mod events;
pub mod payload;
pub mod probe;
pub mod router;
pub mod secret;
pub mod send;
pub mod sign;
pub mod view;

pub use config::{AlertConfigs, ResolvedAdapter, ResolvedAlerts};
pub use events::{
    AlertEvent, AlertRaised, AlertSource, ClearCause, ConditionKey, NotificationId,
    NotificationKind,
};
pub use payload::Notification;
pub use router::{decide, Command, DeliveryOutcome, Effect, RouterState};
pub use secret::{EnvLookup, ProcessEnv, Secret};

#[cfg(test)]
mod tests;
