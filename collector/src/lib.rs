//! The vitalsign collector: receives beacons from the agent
//! (`POST /v1/beacon`), stores their metric reports and serves summaries.
//!
//! Layers, each replaceable on its own: [`ingest`] and [`validate`] turn a
//! body into [`store::Report`]s; [`store::Store`] keeps them and their
//! [`aggregate`]s (SQLite now, see [`store::Sqlite`]); [`summary`] computes
//! what the read APIs show; [`http`] wires it to routes; [`server`] runs it
//! all with a [`config::Config`]. [`alerts`] evaluates alert rules against
//! the store and delivers notifications.

pub use beacon;

pub mod aggregate;
pub mod alerts;
pub mod config;
pub mod fix_first;
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod limit;
pub mod metrics;
pub mod percentile;
pub mod reason;
pub mod server;
pub mod sketch;
pub mod store;
pub mod summary;
pub mod time;
pub mod unknown_fields;
pub mod validate;

#[cfg(test)]
mod testutil;
