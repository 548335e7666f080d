//! The REST API, spoken to the way its users do: a real server on port 0 (with the real Docker
//! Engine and SQLite), the typed `berth-client`, and raw HTTP for what no client would send.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod auth;
mod clusters;
mod config_files;
mod fleet;
mod hostile;
mod lab;
mod machine_terminals;
mod openapi;
mod operations;
mod probing;
mod registration;
mod workspaces;
