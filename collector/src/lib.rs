//! The vitalsign collector: receives beacons from the agent
//! (`POST /v1/beacon`), stores their metric reports and serves summaries.
//!
//! Layers, each replaceable on its own: [`ingest`] and [`validate`] turn a
//! body into [`store::Report`]s; [`store::Store`] keeps them (SQLite now);
//! [`summary`] computes what the API shows; [`http`] wires it to routes;
//! [`server`] runs it all with a [`config::Config`].

pub use beacon;

pub mod config;
pub mod http;
pub mod ingest;
pub mod percentile;
pub mod server;
pub mod store;
pub mod summary;
pub mod validate;
