//! Command-line options, and the one rule that is checked before anything else: loopback targets only.

use clap::{Parser, ValueEnum};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const AFTER_HELP: &str = "\
SCENARIOS
  Start the server with its limits lifted (the defaults are meant for people, not for a load test):
    REGISTRATIONS_PER_IP_PER_HOUR=1000000 MESSAGES_PER_10S=1000000 WS_QUEUE_FRAMES=65536 \\
    ROOM_ACTIONS_PER_10_MIN=1000000 CONNECTIONS_PER_ADDRESS=1000000 WEBSOCKETS_PER_USER=100000 WEBSOCKETS_PER_ADDRESS=1000000 \\
    LEPTOS_SITE_ADDR=127.0.0.1:3000 DATA_DIR=$(mktemp -d) RUST_LOG=warn target/release/server &
  and pass its pid with --server-pid $! to get its memory and CPU use.

  (a) Fan-out: 1,000 clients in 10 rooms of 100, 100 senders, as fast as acks allow, 20 s after a 5 s warm-up:
    loadgen --users 1000 --rooms 10 --senders 100 --max-inflight 8 --warmup 5 --duration 20

  (b) The same clients at a fixed total rate of 700 msg/s:
    loadgen --users 1000 --rooms 10 --senders 100 --rate 700 --warmup 5 --duration 20

  (c) 20,000 idle clients (heartbeats only) held for 60 s; reports the server's RSS per connection:
    loadgen --users 20000 --rooms 200 --senders 0 --duration 60 --source-addrs 4 --user-prefix idle \
            --sessions idle-sessions.json --server-pid PID
    Registrations and logins grow the server's RSS by argon2 buffers its allocator keeps, which hides the
    connections' share. For a clean figure run it twice: the first run creates the users and saves their
    sessions; restart the server on the same DATA_DIR; the second run signs everyone in by token refresh
    (no hashing) before taking the baseline. --settle N also gives the server N seconds before the
    baseline. Both processes need RLIMIT_NOFILE above 20,000 (`ulimit -n`, LimitNOFILE; see below).
    `--users 2000 --connections 20000` (10 connections per user) registers ten times fewer users.

  (d) Connect storm: 5,000 logins + websocket connects as fast as possible. Create the users once, then
      measure logins (argon2 verification on the server) and connects:
    loadgen --scenario connect-storm --users 5000 --user-prefix storm --auth auto
    loadgen --scenario connect-storm --users 5000 --user-prefix storm --auth login --connect-concurrency 256

  Smoke test (a few seconds, exits non-zero on any error, lost or duplicated delivery):
    loadgen --users 20 --rooms 2 --senders 5 --rate 200 --warmup 1 --duration 3

  Read benchmark (no server needed): how many deliveries per second loadgen's receive path reads on
  one core, from a synthetic server in a child process on another core (see `loadgen read-bench --help`):
    taskset -c 1 loadgen read-bench --connections 1000 --seconds 10

USERS AND TIMING
  Users are created through the real registration path (POST /api/auth/register with Origin, then the
  session cookies it sets), named <user-prefix>-<n>. Each registration and each login runs argon2 on the
  server (19 MiB, 2 passes; at most 2 x CPUs at once), about 50-100 ms of CPU each: measured on 2 shared
  cores against a debug server, 22 registrations/s and 15-48 logins/s, so 1,000 users take about a minute
  and 20,000 users 15-20 minutes whatever --connect-concurrency is (a release server is faster; beyond
  2 x CPUs, more concurrency only queues on the server). Reuse users across runs with a fixed --user-prefix:
  `--auth auto` registers and logs in when the name is taken (which costs a second hash), `--auth login`
  only logs in (one verification, ~half the time). A room owner <user-prefix>-owner creates the rooms
  <user-prefix>-room-<i> (reused when they exist); user n joins room n mod R, connection c belongs to user
  c mod N. Access tokens last 15 minutes: tokens older than that are refreshed before connecting.

LIMITS OF THIS MACHINE
  Each connection uses one file descriptor here and one in the server; loadgen raises its soft
  RLIMIT_NOFILE to the hard limit and warns when that is too low. Each source address gives one
  ephemeral port range (net.ipv4.ip_local_port_range, ~28,000 ports): use --source-addrs for more.

EXIT STATUS
  0 when every connection succeeded, no error frame arrived and every acknowledged message reached every
  connection of its room exactly once; 1 otherwise (unless --allow-errors); 2 for bad options.";

/// A load generator speaking ML-CHAT's websocket protocol. Loopback servers only.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version, after_help = AFTER_HELP)]
pub struct Args {
    /// The server's base URL. Must be a loopback address (127.0.0.0/8, ::1) or localhost.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,

    /// The server's public origin (its PUBLIC_ORIGIN), sent as `Origin` on POSTs and the upgrade.
    /// Defaults to the origin of --url.
    #[arg(long)]
    pub origin: Option<String>,

    /// `load`: create users, connect everyone, then send and measure. `connect-storm`: each user logs in
    /// (or registers) and connects at once, as fast as --connect-concurrency allows; no messages unless
    /// --senders is given.
    #[arg(long, value_enum, default_value_t = Scenario::Load)]
    pub scenario: Scenario,

    /// Number of users (N).
    #[arg(short = 'n', long, default_value_t = 100)]
    pub users: usize,

    /// Number of websocket connections (C). Default: one per user. Connection c belongs to user c mod N.
    #[arg(short = 'c', long)]
    pub connections: Option<usize>,

    /// Number of rooms (R). User n joins room n mod R.
    #[arg(short = 'r', long, default_value_t = 1)]
    pub rooms: usize,

    /// How many connections send (S), spread evenly over the rooms. 0: idle, heartbeats only.
    /// Default: 10, or 0 for connect-storm.
    #[arg(short = 's', long)]
    pub senders: Option<usize>,

    /// Target total send rate in messages per second, shared by the senders. Without it each sender
    /// sends as fast as acks allow, keeping at most --max-inflight messages unacknowledged.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Most unacknowledged messages per sender. In --rate mode a sender that reaches it falls behind
    /// its schedule (reported as schedule lag) instead of queueing more.
    #[arg(long, default_value_t = 16)]
    pub max_inflight: usize,

    /// Seconds of measured sending (or, with --senders 0, of holding the connections open).
    /// Default: 10, or 0 for connect-storm.
    #[arg(short = 'd', long)]
    pub duration: Option<f64>,

    /// Seconds of sending before the measured window; their messages are checked for exactly-once
    /// delivery but not counted in latency and throughput. Default: 2, or 0 for connect-storm.
    #[arg(long)]
    pub warmup: Option<f64>,

    /// After sending stops, seconds to wait for outstanding acks and deliveries before counting what
    /// is missing as lost.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,

    /// Pad each message body to at least this many characters (at most 4,000). 0: just the timestamp
    /// line `lg <sender> <n> <unix-nanos>` (about 35 characters).
    #[arg(long, default_value_t = 0)]
    pub body_size: usize,

    /// Seconds to wait after the users are ready and before connecting (load scenario), so the server's
    /// memory settles after the argon2 hashing of registrations and logins before its RSS is taken as
    /// the baseline for RSS per connection.
    #[arg(long, default_value_t = 0.0)]
    pub settle: f64,

    /// Registrations, logins and websocket connects running at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,

    /// Seconds allowed for one HTTP call or one websocket connect (up to its `synced`).
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,

    /// Loopback source addresses to spread connections over (127.0.0.1, 127.0.0.2, ...), for more
    /// than one ephemeral port range. 0: one per 20,000 connections.
    #[arg(long, default_value_t = 0)]
    pub source_addrs: usize,

    /// Usernames are <user-prefix>-<n> (at most 20 characters of letters, digits, `_`, `-`). Default: a
    /// fresh random prefix per run. Give a fixed one to reuse users (and rooms) across runs.
    #[arg(long)]
    pub user_prefix: Option<String>,

    /// Password of every generated user.
    #[arg(long, default_value = "velvet-orbit-cactus-91")]
    pub password: String,

    /// How to get a session: `auto` registers and logs in when the name is taken, `register` only
    /// registers, `login` only logs in (users made by an earlier run with the same --user-prefix).
    #[arg(long, value_enum, default_value_t = AuthMode::Auto)]
    pub auth: AuthMode,

    /// Keep sessions (cookies) in this JSON file across runs: saved users are signed in again by a
    /// token refresh, which costs the server no argon2 hash. Falls back to --auth when a saved session no
    /// longer works. The file holds live session cookies: keep it private.
    #[arg(long)]
    pub sessions: Option<std::path::PathBuf>,

    /// The server's process id: its RSS (VmRSS) and CPU are read from /proc at the start, before
    /// connecting and at the end.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Also write every result as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,

    /// Exit 0 even when there were errors, lost or duplicated deliveries.
    #[arg(long)]
    pub allow_errors: bool,

    /// Worker threads of loadgen's runtime. Default: the number of CPUs.
    #[arg(long)]
    pub threads: Option<usize>,

    /// After its room's `synced`, each connection sends one `watch` naming the first N members of its
    /// room (in the order users are assigned to rooms; it waits until they have connected or failed)
    /// to follow their presence; presence frames and changes received are reported. At most 500. 0:
    /// no `watch` is sent (a server without the command answers it with an error frame, which fails
    /// the run).
    #[arg(long, default_value_t = 0)]
    pub watch: usize,

    /// Seconds between progress lines on stderr; 0 for none.
    #[arg(long, default_value_t = 5.0)]
    pub progress: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Load,
    ConnectStorm,
}

/// The name an option value has on the command line.
pub fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    Auto,
    Register,
    Login,
}

/// Options after defaults and checks.
#[derive(Debug, Clone)]
pub struct Config {
    pub args: Args,
    pub target: Target,
    pub origin: String,
    pub connections: usize,
    pub senders: usize,
    pub duration: f64,
    pub warmup: f64,
    pub prefix: String,
    pub source_addrs: Vec<IpAddr>,
}

/// Where the server is: only ever a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    /// `http://host:port` as given (host kept, so `localhost` stays `localhost`).
    pub base: String,
    pub origin: String,
}

/// Parses `--url` and refuses anything that is not loopback: this tool must never load someone else's
/// server.
pub fn loopback_target(url: &str) -> Result<Target, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("--url {url:?} is not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "--url {url:?}: only http:// is supported (a loopback server needs no TLS)"
        ));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(format!(
            "--url {url:?}: give the server's base URL, without a path"
        ));
    }
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => IpAddr::V6(ip),
        Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
        Some(host) => {
            return Err(format!(
                "refusing to target {host}: loadgen only ever targets loopback (127.0.0.0/8, ::1 or localhost)"
            ))
        }
        None => return Err(format!("--url {url:?} has no host")),
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = parsed.host_str().unwrap_or_default();
    let origin = match parsed.port() {
        Some(port) => format!("http://{host}:{port}"),
        None => format!("http://{host}"),
    };
    Ok(Target {
        ip,
        port,
        base: origin.clone(),
        origin,
    })
}

/// `count` loopback source addresses of the same family as `target`: 127.0.0.1, 127.0.0.2, ... (all of
/// 127.0.0.0/8 is local on Linux), or just ::1.
pub fn source_addresses(target: IpAddr, count: usize) -> Vec<IpAddr> {
    match target {
        IpAddr::V6(_) => vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
        IpAddr::V4(_) => (0..count.clamp(1, 65_000) as u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x7f00_0001 + i)))
            .collect(),
    }
}

fn valid_prefix(prefix: &str) -> bool {
    (1..=20).contains(&prefix.len())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Args {
    pub fn into_config(self) -> Result<Config, String> {
        let target = loopback_target(&self.url)?;
        let origin = self
            .origin
            .clone()
            .map(|o| o.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| target.origin.clone());
        if self.users == 0 {
            return Err("--users must be at least 1".into());
        }
        if self.rooms == 0 {
            return Err("--rooms must be at least 1".into());
        }
        let storm = self.scenario == Scenario::ConnectStorm;
        let connections = self.connections.unwrap_or(self.users);
        let senders = self.senders.unwrap_or(if storm { 0 } else { 10 });
        if senders > connections {
            return Err(format!(
                "--senders {senders} is more than the {connections} connections"
            ));
        }
        let duration = self.duration.unwrap_or(if storm { 0.0 } else { 10.0 });
        let warmup = self.warmup.unwrap_or(if storm { 0.0 } else { 2.0 });
        if !(duration >= 0.0 && warmup >= 0.0 && self.drain_timeout >= 0.0 && self.settle >= 0.0) {
            return Err(
                "--duration, --warmup, --drain-timeout and --settle must be 0 or more".into(),
            );
        }
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err("--rate must be a positive number of messages per second".into());
            }
        }
        if self.watch > crate::wire::MAX_WATCH {
            return Err(format!(
                "--watch names at most {} members",
                crate::wire::MAX_WATCH
            ));
        }
        if self.max_inflight == 0 {
            return Err("--max-inflight must be at least 1".into());
        }
        if self.body_size > app::protocol::MAX_BODY_CHARS {
            return Err(format!(
                "--body-size is at most {}",
                app::protocol::MAX_BODY_CHARS
            ));
        }
        if self.connect_concurrency == 0 {
            return Err("--connect-concurrency must be at least 1".into());
        }
        let prefix = match &self.user_prefix {
            Some(p) if valid_prefix(p) => p.clone(),
            Some(p) => {
                return Err(format!(
                    "--user-prefix {p:?}: 1-20 letters, digits, `_` or `-`"
                ))
            }
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                format!(
                    "lg{:06x}",
                    (nanos as u64 ^ u64::from(std::process::id())) & 0xff_ffff
                )
            }
        };
        let wanted_addrs = if self.source_addrs == 0 {
            connections.div_ceil(20_000).max(1)
        } else {
            self.source_addrs
        };
        let source_addrs = source_addresses(target.ip, wanted_addrs);
        Ok(Config {
            target,
            origin,
            connections,
            senders,
            duration,
            warmup,
            prefix,
            source_addrs,
            args: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        for ok in [
            "http://127.0.0.1:3000",
            "http://127.0.0.1:3000/",
            "http://127.1.2.3:8080",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://[::1]:3000",
        ] {
            assert!(loopback_target(ok).is_ok(), "{ok} should be accepted");
        }
        for refused in [
            "http://10.0.0.1:3000",
            "http://192.168.1.10",
            "http://example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "http://[::2]:3000",
            "http://0.0.0.0:3000",
            "https://127.0.0.1:3000",
            "http://127.0.0.1:3000/api",
            "127.0.0.1:3000",
            "",
        ] {
            assert!(
                loopback_target(refused).is_err(),
                "{refused} must be refused"
            );
        }
    }

    #[test]
    fn targets_keep_host_and_port() {
        let t = loopback_target("http://localhost:3000").unwrap();
        assert_eq!(t.ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(t.port, 3000);
        assert_eq!(t.origin, "http://localhost:3000");
        let t = loopback_target("http://[::1]:4000").unwrap();
        assert_eq!(t.ip, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(t.origin, "http://[::1]:4000");
        assert_eq!(loopback_target("http://127.0.0.1").unwrap().port, 80);
    }

    #[test]
    fn source_addresses_count_up_from_127_0_0_1() {
        let v4 = source_addresses(IpAddr::V4(Ipv4Addr::LOCALHOST), 3);
        assert_eq!(
            v4,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
                .map(|s| s.parse::<IpAddr>().unwrap())
                .to_vec()
        );
        assert_eq!(
            source_addresses(IpAddr::V4(Ipv4Addr::LOCALHOST), 300)[299].to_string(),
            "127.0.1.44"
        );
        assert_eq!(
            source_addresses(IpAddr::V6(Ipv6Addr::LOCALHOST), 5).len(),
            1
        );
    }

    #[test]
    fn prefixes_make_valid_usernames() {
        assert!(valid_prefix("storm"));
        assert!(valid_prefix("lg-01_a"));
        assert!(!valid_prefix(""));
        assert!(!valid_prefix("has space"));
        assert!(!valid_prefix("x".repeat(21).as_str()));
    }
}
