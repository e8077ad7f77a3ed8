//! Alert delivery: routing typed alert classes to Slack, PagerDuty and
//! signed webhooks, with the journal as the outbox (docs/alerts.md).

pub mod config;
pub mod endpoint;
pub mod events;
pub mod payload;
pub mod router;
pub mod secret;
pub mod sign;
