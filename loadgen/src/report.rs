//! The results: one serializable summary, printed for people and written as JSON with --json.

use crate::stats::{Errors, Percentiles, Verdict};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub settings: Settings,
    pub setup: Setup,
    pub connect: Connect,
    pub traffic: Traffic,
    pub delivery: Delivery,
    pub receive: Receive,
    pub presence: PresenceSummary,
    pub resources: Resources,
    pub errors: Errors,
    /// A few error details, to see what went wrong without a debugger.
    pub error_samples: Vec<String>,
    pub passed: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Settings {
    pub url: String,
    pub origin: String,
    pub scenario: String,
    pub users: usize,
    pub connections: usize,
    pub rooms: usize,
    pub senders: usize,
    pub rate: Option<f64>,
    pub max_inflight: usize,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub body_size: usize,
    pub connect_concurrency: usize,
    pub source_addrs: usize,
    pub user_prefix: String,
    pub auth: String,
    pub threads: usize,
    pub watch: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Setup {
    pub wall_secs: f64,
    pub users_ok: usize,
    /// Users signed in (and joined) per second.
    pub per_sec: f64,
    pub registered: usize,
    pub logged_in: usize,
    /// Signed in by refreshing a session saved with --sessions.
    pub reused: usize,
    /// `POST /api/auth/register` (only registrations that created a user).
    pub register: Percentiles,
    /// `POST /api/auth/login`.
    pub login: Percentiles,
    /// `POST /api/rooms/join`.
    pub join: Percentiles,
    pub refreshed: usize,
    pub failed: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Connect {
    pub wall_secs: f64,
    pub established: usize,
    pub failed: usize,
    pub per_sec: f64,
    /// TCP connect + websocket upgrade.
    pub upgrade: Percentiles,
    /// TCP connect to the room's `synced` (upgrade, welcome, hello, synced).
    pub ready: Percentiles,
    /// Connect storm: a user's whole way in (login or registration, join, first connection ready).
    pub user_total: Percentiles,
    /// CPU while connecting (the whole storm in connect-storm), % of one core.
    pub loadgen_cpu_percent: Option<f64>,
    pub server_cpu_percent: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Traffic {
    /// The measured window (after the warm-up), in seconds.
    pub window_secs: f64,
    pub sent_total: u64,
    pub acked_total: u64,
    pub delivered_total: u64,
    /// Messages sent inside the window.
    pub sent_measured: u64,
    pub acked_measured: u64,
    pub delivered_measured: u64,
    pub sent_per_sec: f64,
    pub acked_per_sec: f64,
    pub delivered_per_sec: f64,
    pub failed_sends: u64,
    pub unacked_at_end: u64,
    /// Send (timestamp in the body) to `message` on each receiving connection.
    pub latency: Percentiles,
    /// Send to `ack` on the sender.
    pub ack_latency: Percentiles,
    /// Rate mode: how far behind schedule a sender fell at worst (the in-flight bound held it back).
    pub max_schedule_lag_ms: f64,
    pub drain_secs: f64,
    pub drained: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Delivery {
    pub acked_messages: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Connections that stayed open to the end; only their deliveries are checked.
    pub checked_connections: usize,
    /// Connections that closed early (counted as errors); not checked.
    pub unchecked_connections: usize,
    /// One sequence number acknowledged for two messages.
    pub reused_seqs: u64,
    /// Messages in rooms this run does not use (users reused from other runs).
    pub foreign_messages: u64,
}

/// What the connections read (warm-up and drain included).
#[derive(Debug, Default, Serialize)]
pub struct Receive {
    /// Websocket messages, and the protocol items in them.
    pub frames: u64,
    pub items: u64,
    /// Items of the kinds loadgen scans that the scanner could not read (decoded by serde instead;
    /// anything but 0 means the server's encoding changed in a way the scanner does not follow).
    pub slow_path_items: u64,
}

/// Presence, and `--watch`.
#[derive(Debug, Default, Serialize)]
pub struct PresenceSummary {
    /// `--watch N`: members of its room each connection asked to follow.
    pub watch: usize,
    /// Connections that sent their `watch`, and the users those named in all.
    pub watches_sent: u64,
    pub watched_users: u64,
    /// `presence` frames received by all connections, and the changes they carried.
    pub frames: u64,
    pub changes: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Resources {
    pub server_pid: Option<u32>,
    pub server_rss_start_mb: Option<f64>,
    pub server_rss_before_connect_mb: Option<f64>,
    pub server_rss_after_connect_mb: Option<f64>,
    pub server_rss_end_mb: Option<f64>,
    /// (end - before connecting) / established connections.
    pub server_rss_per_connection_kb: Option<f64>,
    /// (after connecting - before connecting) / established connections: before any traffic.
    pub server_rss_per_connection_at_connect_kb: Option<f64>,
    /// Server CPU during the send window (warm-up + measured), % of one core.
    pub server_cpu_percent: Option<f64>,
    pub loadgen_cpu_percent: Option<f64>,
    /// loadgen's CPU over its whole run, % of one core.
    pub loadgen_cpu_percent_total: Option<f64>,
    pub loadgen_rss_end_mb: Option<f64>,
    pub cpus: usize,
    pub nofile_limit: u64,
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} {unit}"))
}

impl Summary {
    pub fn print(&self) {
        let s = &self.settings;
        println!("== loadgen: {} ==", s.scenario);
        println!(
            "target {}  users {}  connections {}  rooms {}  senders {}  rate {}  max-inflight {}  warm-up {} s  window {} s",
            s.url,
            s.users,
            s.connections,
            s.rooms,
            s.senders,
            match (s.senders, s.rate) {
                (0, _) => "- (idle)".to_owned(),
                (_, Some(r)) => format!("{r} msg/s"),
                (_, None) => "as fast as acks allow".to_owned(),
            },
            s.max_inflight,
            s.warmup_secs,
            s.duration_secs
        );
        let u = &self.setup;
        println!(
            "setup      {} users in {:.1} s ({:.0}/s; {} registered, {} logged in, {} saved sessions reused, {} failed, {} tokens refreshed)",
            u.users_ok, u.wall_secs, u.per_sec, u.registered, u.logged_in, u.reused, u.failed, u.refreshed
        );
        println!("  register   {}", u.register.line());
        println!("  login      {}", u.login.line());
        println!("  join       {}", u.join.line());
        let c = &self.connect;
        println!(
            "connect    {} established, {} failed in {:.1} s ({:.0}/s; CPU loadgen {}, server {})",
            c.established,
            c.failed,
            c.wall_secs,
            c.per_sec,
            opt(c.loadgen_cpu_percent, "%"),
            opt(c.server_cpu_percent, "%"),
        );
        println!("  upgrade    {}", c.upgrade.line());
        println!("  to synced  {}", c.ready.line());
        if c.user_total.count > 0 {
            println!("  login+join+connect {}", c.user_total.line());
        }
        let t = &self.traffic;
        if t.sent_total > 0 {
            println!(
                "traffic    window {:.1} s: sent {:.0}/s  acked {:.0}/s  delivered {:.0}/s  (totals incl. warm-up: sent {}, acked {}, delivered {})",
                t.window_secs, t.sent_per_sec, t.acked_per_sec, t.delivered_per_sec, t.sent_total, t.acked_total, t.delivered_total
            );
            println!("  latency    {}", t.latency.line());
            println!("  ack        {}", t.ack_latency.line());
            if s.rate.is_some() {
                println!("  max schedule lag {:.1} ms", t.max_schedule_lag_ms);
            }
            println!(
                "  drain      {:.2} s{}  failed sends {}  unacked at end {}",
                t.drain_secs,
                if t.drained { "" } else { " (timed out)" },
                t.failed_sends,
                t.unacked_at_end
            );
        } else {
            println!(
                "traffic    none (idle: heartbeats only) for {:.1} s",
                t.window_secs
            );
        }
        let d = &self.delivery;
        println!(
            "delivery   {} acked messages; {} expected deliveries on {} connections: lost {}, duplicated {}, delivered-unacked {}{}{}",
            d.acked_messages,
            d.verdict.expected,
            d.checked_connections,
            d.verdict.lost,
            d.verdict.duplicated,
            d.verdict.unacked_delivered,
            if d.unchecked_connections > 0 { format!(", {} closed early (unchecked)", d.unchecked_connections) } else { String::new() },
            if d.reused_seqs > 0 { format!(", {} seqs acked twice", d.reused_seqs) } else { String::new() },
        );
        let v = &self.receive;
        println!(
            "receive    {} frames, {} items ({} read by the serde fallback)",
            v.frames, v.items, v.slow_path_items
        );
        let p = &self.presence;
        println!(
            "presence   {} presence frames, {} changes; watch {}: sent by {} connections, {} users named",
            p.frames, p.changes, p.watch, p.watches_sent, p.watched_users
        );
        let r = &self.resources;
        println!(
            "server     RSS start {}  before connect {}  after connect {}  end {}",
            opt(r.server_rss_start_mb, "MB"),
            opt(r.server_rss_before_connect_mb, "MB"),
            opt(r.server_rss_after_connect_mb, "MB"),
            opt(r.server_rss_end_mb, "MB"),
        );
        println!(
            "  RSS per connection {} (end - before connect), {} (just after connecting); CPU {} during the send window",
            opt(r.server_rss_per_connection_kb, "KB"),
            opt(r.server_rss_per_connection_at_connect_kb, "KB"),
            opt(r.server_cpu_percent, "% of a core"),
        );
        println!(
            "loadgen    CPU {} during the send window, {} overall; RSS {}; {} CPUs; open-file limit {}",
            opt(r.loadgen_cpu_percent, "% of a core"),
            opt(r.loadgen_cpu_percent_total, "%"),
            opt(r.loadgen_rss_end_mb, "MB"),
            r.cpus,
            r.nofile_limit
        );
        if self.errors.0.is_empty() {
            println!("errors     none");
        } else {
            println!("errors     {}", self.errors.total());
            for (kind, n) in &self.errors.0 {
                println!("  {n:>8}  {kind}");
            }
            for sample in &self.error_samples {
                println!("  e.g. {sample}");
            }
        }
        println!("result     {}", if self.passed { "PASS" } else { "FAIL" });
    }
}
