//! # `sluice-master`: the master and the `sluice` command line
//!
//! ```text
//! REST (api/) ─▶ compile (sluice-compiler) ─▶ Job{spec, version, plan} in the store (sled)
//!                                                        │
//!      watchdog: decide(desired, observed, now) ─▶ actions ─▶ cluster driver ─▶ instance
//!                                                        (a `sluice worker` process running the
//!                                                         DataflowPlan with timely/differential)
//! ```
//!
//! The master sits before the running instance on the data path: it turns submitted SQL
//! into stored, versioned plans and keeps instances of them alive. It never links
//! timely or CUDA: instances are separate processes (`sluice worker` hands over to the
//! `sluice-worker` executable built by the dataflow crate).

pub mod agent;
pub mod api;
pub mod auth;
pub mod checkpoints;
pub mod client;
pub mod client_security;
pub mod cluster;
pub mod config;
pub mod core;
pub mod history;
pub mod jobs;
pub mod master;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod preview;
pub mod reconcile;
pub mod sandbox;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod watchdog;
pub mod worker_bin;
pub mod workflow;
