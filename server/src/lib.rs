//! The ML-CHAT server: configuration, HTTP wiring and start-up. Application logic lives in the `app`
//! crate; this crate only composes it.

pub mod admin;
pub mod auth_guard;
pub mod client_ip;
pub mod config;
pub mod health;
pub mod memory;
pub mod middleware;
pub mod push_settings;
pub mod serve;
pub mod startup;
pub mod telemetry;
