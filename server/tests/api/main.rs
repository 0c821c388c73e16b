//! Black-box tests: each starts the real server on a random port with a fresh store and speaks HTTP.
//! All of them build into this one test binary.

mod helpers;

mod admin;
mod admin_cli;
mod auth;
mod changes;
mod chat_ws;
mod crash;
mod files;
mod first_run;
mod fuzz;
mod hardening;
mod health;
mod http_layers;
mod outage;
mod pages;
mod pictures;
mod push;
mod scale_out;
mod search;
mod threads;
mod two_factor;
