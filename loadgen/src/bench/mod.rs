//! `loadgen read-bench`: how many deliveries per second loadgen's receive path reads on one core.
//!
//! A synthetic server (`server.rs`) runs as a child process pinned to another core and writes
//! realistic batch frames of `message` items to every connection as fast as it can; loadgen connects
//! with the same code the scenarios use (`conn::open`, `conn::run`: lean websocket client, scanner,
//! exactly-once and latency bookkeeping) and reads. Deliveries read in the measured window, loadgen's
//! CPU and the exactly-once verdict of every connection are reported. `--path old` reads with the
//! receive path loadgen had before (tokio-tungstenite and serde), for a comparison on the same day.

mod offline;
mod old;
pub mod server;

use crate::conn::{self, ConnShared, Endpoint, Phase, Plan, Report, Shared, Spec};
use crate::members::Members;
use crate::proc::{self, CpuMark};
use crate::stats::{Errors, Percentiles, SharedHistogram, Verdict};
use anyhow::Context;
use app::model::RoomId;
use clap::{Parser, ValueEnum};
use serde::Serialize;
use std::ffi::OsString;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Every connection is synced at this sequence number: the ones written after it have 10 digits.
pub const BASE_SEQ: u64 = 999_999_999;

/// The id of benchmark room `r` (the server and the readers agree on it without talking).
pub fn bench_room(r: usize) -> RoomId {
    RoomId::from_uuid(uuid::Uuid::from_u128(
        0x6c67_6265_6e63_4000_8000_0000_0000_0000 | r as u128,
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceivePath {
    /// The scenarios' receive path: lean websocket client and JSON scanner.
    Lean,
    /// The one before it: tokio-tungstenite and the borrowing serde decoder.
    Old,
}

/// How fast loadgen reads, on one core, from a synthetic server on another.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen read-bench",
    after_help = "Run loadgen on one core and let the server take another, e.g.\n  \
                  taskset -c 1 loadgen read-bench --connections 1000 --seconds 10\n\
                  Exit status 1 if any connection failed, lost or duplicated a delivery."
)]
pub struct BenchArgs {
    /// Connections the server writes to.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Rooms they are in (connection c in room c mod R; the room only changes the id in each item).
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of reading before the measured window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Which receive path reads.
    #[arg(long, value_enum, default_value_t = ReceivePath::Lean)]
    pub path: ReceivePath,
    /// The core the synthetic server is pinned to; -1: not pinned.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub server_cpu: i64,
    /// Most bytes per batch frame, as the server packs them (`app::chat::socket`: 4 KiB).
    #[arg(long, default_value_t = 4096)]
    pub batch_bytes: usize,
    /// Deliveries per second the server writes in all (spread evenly over the connections): shows
    /// what reading that rate costs loadgen. 0: as fast as it can (the reading side is the limit).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Batch frames the synthetic server writes per write call.
    #[arg(long, default_value_t = 16)]
    pub frames_per_write: usize,
    /// No sockets: frames copied from memory through the frame parser, scanner and bookkeeping on
    /// one thread, for loadgen's own cost per delivery (try it under valgrind --tool=cachegrind).
    #[arg(long)]
    pub offline: bool,
    /// Worker threads of loadgen's runtime. Default: the CPUs it may run on.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// What the benchmark measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub path: ReceivePath,
    pub connections: usize,
    pub rooms: usize,
    pub warmup_secs: f64,
    pub window_secs: f64,
    /// The items: bytes of JSON each, per batch frame, bytes per frame, frames per server write.
    pub item_bytes: usize,
    pub items_per_frame: usize,
    pub frame_bytes: usize,
    pub frames_per_write: usize,
    /// The rate asked of the server (0: as fast as it can).
    pub rate: f64,
    pub server_cpu: i64,
    pub loadgen_cpus: Vec<usize>,
    pub threads: usize,
    /// Deliveries read in the measured window, per second.
    pub deliveries_per_sec: f64,
    /// loadgen's and the server's CPU in the window, % of one core.
    pub loadgen_cpu_percent: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    /// Of loadgen's CPU, the part in its own code and in the kernel (reads, and on loopback the
    /// TCP work of the server's sends that loadgen's acknowledgements release).
    pub loadgen_user_percent: Option<f64>,
    pub loadgen_system_percent: Option<f64>,
    /// Deliveries read per second of loadgen CPU: what one full core would read.
    pub deliveries_per_cpu_sec: Option<f64>,
    /// Server write to loadgen read, for items written in the window (queueing in the sockets
    /// included).
    pub latency: Percentiles,
    pub delivered_total: u64,
    /// Every sequence number up to the last one read, on every connection, exactly once.
    pub verdict: Verdict,
    pub checked_connections: usize,
    pub slow_path_items: u64,
    pub errors: Errors,
    pub passed: bool,
}

/// `loadgen read-bench ...` (the first argument is the subcommand's name).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = BenchArgs::parse_from(args);
    if args.connections == 0 || args.rooms == 0 || args.frames_per_write == 0 {
        eprintln!(
            "loadgen read-bench: --connections, --rooms and --frames-per-write must be at least 1"
        );
        return ExitCode::from(2);
    }
    if !(args.seconds > 0.0 && args.warmup >= 0.0) {
        eprintln!("loadgen read-bench: --seconds must be positive and --warmup 0 or more");
        return ExitCode::from(2);
    }
    if args.offline {
        return match offline::run(args.batch_bytes, args.frames_per_write, args.seconds) {
            Ok(o) => {
                println!("== loadgen read-bench --offline: frame parser, scanner, bookkeeping ==");
                println!(
                    "message items of {} bytes of JSON, {} per batch frame ({} bytes), {} frames per read",
                    o.item_bytes, o.items_per_frame, o.frame_bytes, args.frames_per_write
                );
                println!(
                    "read       {} deliveries in {:.2} CPU-seconds: {:.0} per CPU-second, {:.1} ns each; none lost or duplicated",
                    o.deliveries,
                    o.cpu_secs,
                    o.deliveries as f64 / o.cpu_secs.max(1e-9),
                    o.cpu_secs * 1e9 / o.deliveries.max(1) as f64
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen read-bench --offline: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    match bench(&args) {
        Ok(report) => {
            print(&report, &args);
            if let Some(path) = &args.json {
                let written = serde_json::to_string_pretty(&report)
                    .map_err(anyhow::Error::from)
                    .and_then(|json| Ok(std::fs::write(path, json + "\n")?));
                if let Err(e) = written {
                    eprintln!("loadgen read-bench: writing {}: {e:#}", path.display());
                    return ExitCode::from(1);
                }
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loadgen read-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The synthetic server's process and what it said about its frames.
struct ServerChild {
    child: Child,
    port: u16,
    item_bytes: usize,
    items_per_frame: usize,
    frame_bytes: usize,
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Closing its stdin ends it; kill it anyway in case it is stuck in a write.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(args: &BenchArgs) -> anyhow::Result<ServerChild> {
    let exe = std::env::current_exe().context("finding loadgen's own executable")?;
    let mut child = Command::new(exe)
        .arg("read-bench-server")
        .args(["--rooms", &args.rooms.to_string()])
        .args(["--batch-bytes", &args.batch_bytes.to_string()])
        .args(["--frames-per-write", &args.frames_per_write.to_string()])
        .args(["--cpu", &args.server_cpu.to_string()])
        .args(["--rate", &args.rate.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the synthetic server")?;
    let stdout = child.stdout.take().expect("piped");
    let mut server = ServerChild {
        child,
        port: 0,
        item_bytes: 0,
        items_per_frame: 0,
        frame_bytes: 0,
    };
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    // `port P item L items-per-frame K frame F`
    let words: Vec<&str> = line.split_whitespace().collect();
    let value = |key: &str| -> anyhow::Result<usize> {
        let at = words.iter().position(|w| *w == key);
        at.and_then(|i| words.get(i + 1)?.parse().ok())
            .with_context(|| format!("the synthetic server said {line:?}"))
    };
    server.port = u16::try_from(value("port")?)?;
    server.item_bytes = value("item")?;
    server.items_per_frame = value("items-per-frame")?;
    server.frame_bytes = value("frame")?;
    Ok(server)
}

fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let cpus = proc::allowed_cpus();
    if args.server_cpu >= 0 && cpus.contains(&(args.server_cpu as usize)) {
        eprintln!(
            "loadgen read-bench: WARNING: loadgen may run on CPU {} too, where the server is pinned; \
             run it with taskset on another core",
            args.server_cpu
        );
    }
    match proc::raise_nofile_limit() {
        Ok((soft, _)) if (soft as usize) < args.connections + 100 => eprintln!(
            "loadgen read-bench: WARNING: the open-file limit {soft} is low for {} connections",
            args.connections
        ),
        Ok(_) => {}
        Err(e) => {
            eprintln!("loadgen read-bench: WARNING: could not raise the open-file limit: {e}")
        }
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let server = start_server(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let mut report = runtime.block_on(measure(args, &server, threads))?;
    report.loadgen_cpus = cpus;
    // Stop the server before the runtime (and its sockets) go.
    drop(server);
    drop(runtime);
    Ok(report)
}

async fn measure(
    args: &BenchArgs,
    server: &ServerChild,
    threads: usize,
) -> anyhow::Result<BenchReport> {
    let conns = args.connections;
    let shared = Arc::new(Shared {
        conns: (0..conns).map(|_| ConnShared::default()).collect(),
        room_targets: (0..args.rooms).map(|_| AtomicU64::new(0)).collect(),
        latency: SharedHistogram::new((threads * 4).max(4)),
        ack_latency: SharedHistogram::new(1),
        senders: 0,
        rate: None,
        max_inflight: 1,
        body_size: 0,
        watch: 0,
        members: Members::new(conns, args.rooms, conns, 0),
    });
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let endpoint = Arc::new(Endpoint {
        addr: SocketAddr::new(localhost, server.port),
        host: format!("127.0.0.1:{}", server.port),
        path: "/api/ws".into(),
        origin: format!("http://127.0.0.1:{}", server.port),
        timeout: Duration::from_secs(30),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let permits = Arc::new(Semaphore::new(64));
    let path = args.path;
    let mut connecting = Vec::with_capacity(conns);
    for c in 0..conns {
        let spec = Spec {
            id: c as u32,
            user: c,
            room_idx: c % args.rooms,
            room: bench_room(c % args.rooms),
            source: localhost,
            sender_rank: None,
        };
        let (endpoint, shared, phase, permits) = (
            endpoint.clone(),
            shared.clone(),
            phase_rx.clone(),
            permits.clone(),
        );
        connecting.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.expect("never closed");
            let cookies = format!("lg_bench={c}");
            let run: JoinHandle<Report> = match path {
                ReceivePath::Lean => {
                    let open = conn::open(&endpoint, spec.source, &cookies, spec.room);
                    let established = tokio::time::timeout(endpoint.timeout, open)
                        .await
                        .map_err(|_| anyhow::anyhow!("connection {c}: no synced in time"))?
                        .map_err(|e| anyhow::anyhow!("connection {c}: {}: {}", e.kind, e.detail))?;
                    tokio::spawn(conn::run(spec, established, shared, phase))
                }
                ReceivePath::Old => {
                    let (ws, base) = old::open(&endpoint, &spec, &cookies)
                        .await
                        .map_err(|e| anyhow::anyhow!("connection {c}: {}: {}", e.kind, e.detail))?;
                    tokio::spawn(old::run(spec, ws, base, shared, phase))
                }
            };
            anyhow::Ok(run)
        }));
    }
    let mut runs = Vec::with_capacity(conns);
    for task in connecting {
        runs.push(task.await??);
    }
    eprintln!("loadgen read-bench: {conns} connections reading");

    let start = Instant::now();
    let now_ns = crate::wire::unix_nanos();
    let warmup = Duration::from_secs_f64(args.warmup);
    let window = Duration::from_secs_f64(args.seconds);
    phase_tx.send_replace(Phase::Run(Plan {
        start,
        send_until: start,
        measure_from_ns: now_ns + warmup.as_nanos() as u64,
        measure_to_ns: now_ns + (warmup + window).as_nanos() as u64,
    }));
    let delivered = || -> u64 { shared.conns.iter().map(|c| c.delivered.load(Relaxed)).sum() };
    tokio::time::sleep_until(start + warmup).await;
    let (d0, cpu0, split0, t0) = (
        delivered(),
        CpuMark::now(Some(server.child.id())),
        proc::own_cpu_split(),
        Instant::now(),
    );
    let mut last = (d0, t0);
    for second in 1..=args.seconds.ceil() as u64 {
        let at = (start + warmup + Duration::from_secs(second)).min(start + warmup + window);
        tokio::time::sleep_until(at).await;
        let d = delivered();
        let rate = (d - last.0) as f64 / last.1.elapsed().as_secs_f64().max(1e-9);
        eprintln!("loadgen read-bench: {second:>4} s  {rate:>12.0} deliveries/s");
        last = (d, Instant::now());
    }
    let (d1, cpu1, split1) = (
        delivered(),
        CpuMark::now(Some(server.child.id())),
        proc::own_cpu_split(),
    );
    // The window as it was, not as asked: on a busy machine this task may wake late.
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    let split = split0
        .zip(split1)
        .map(|((u0, s0), (u1, s1))| (100.0 * (u1 - u0) / secs, 100.0 * (s1 - s0) / secs));
    let (loadgen_cpu, server_cpu) = cpu0.percent_until(&cpu1);
    phase_tx.send_replace(Phase::Stop);

    let mut verdict = Verdict::default();
    let mut errors = Errors::default();
    let (mut checked, mut total, mut slow) = (0, 0, 0);
    for run in runs {
        let report = run.await?;
        errors.merge(&report.errors);
        total += report.counts.delivered;
        slow += report.counts.slow_items;
        if report.open_at_end {
            checked += 1;
            verdict.add(report.deliveries.check_contiguous());
        }
    }
    if checked < conns {
        errors.add("connections closed early", (conns - checked) as u64);
    }
    let deliveries_per_sec = (d1 - d0) as f64 / secs;
    Ok(BenchReport {
        path: args.path,
        connections: conns,
        rooms: args.rooms,
        warmup_secs: args.warmup,
        window_secs: secs,
        item_bytes: server.item_bytes,
        items_per_frame: server.items_per_frame,
        frame_bytes: server.frame_bytes,
        frames_per_write: args.frames_per_write,
        rate: args.rate,
        server_cpu: args.server_cpu,
        loadgen_cpus: Vec::new(),
        threads,
        deliveries_per_sec,
        loadgen_cpu_percent: loadgen_cpu,
        server_cpu_percent: server_cpu,
        loadgen_user_percent: split.map(|s| s.0),
        loadgen_system_percent: split.map(|s| s.1),
        deliveries_per_cpu_sec: loadgen_cpu
            .filter(|&p| p > 0.0)
            .map(|p| deliveries_per_sec / (p / 100.0)),
        latency: Percentiles::of(&shared.latency.merged()),
        delivered_total: total,
        passed: errors.total() == 0
            && verdict.lost == 0
            && verdict.duplicated == 0
            && verdict.expected > 0,
        verdict,
        checked_connections: checked,
        slow_path_items: slow,
        errors,
    })
}

fn print(r: &BenchReport, args: &BenchArgs) {
    let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} %"));
    println!(
        "== loadgen read-bench: {} receive path ==",
        crate::cli::value_name(args.path)
    );
    println!(
        "{} connections in {} rooms; message items of {} bytes of JSON, {} per batch frame ({} bytes), {} frames per server write",
        r.connections, r.rooms, r.item_bytes, r.items_per_frame, r.frame_bytes, r.frames_per_write
    );
    println!(
        "server     synthetic, pinned to CPU {}, writing {}; loadgen on CPUs {:?} with {} worker thread(s)",
        r.server_cpu,
        if r.rate > 0.0 {
            format!("{:.0} deliveries/s", r.rate)
        } else {
            "as fast as it can".to_owned()
        },
        r.loadgen_cpus,
        r.threads
    );
    println!(
        "read       {:.0} deliveries/s ({:.0} frames/s) in a {:.1} s window after {:.1} s warm-up",
        r.deliveries_per_sec,
        r.deliveries_per_sec / r.items_per_frame.max(1) as f64,
        r.window_secs,
        r.warmup_secs
    );
    println!(
        "CPU        loadgen {} (user {}, system {}), server {}{}",
        opt(r.loadgen_cpu_percent),
        opt(r.loadgen_user_percent),
        opt(r.loadgen_system_percent),
        opt(r.server_cpu_percent),
        r.deliveries_per_cpu_sec
            .map_or_else(String::new, |d| format!(
                "; {d:.0} deliveries per loadgen CPU-second"
            ))
    );
    println!("latency    {} (server write to read)", r.latency.line());
    println!(
        "delivery   {} read in all, {} expected on {} connections: lost {}, duplicated {}; {} read by the serde fallback",
        r.delivered_total,
        r.verdict.expected,
        r.checked_connections,
        r.verdict.lost,
        r.verdict.duplicated,
        r.slow_path_items
    );
    if r.errors.0.is_empty() {
        println!("errors     none");
    } else {
        println!("errors     {}", r.errors.total());
        for (kind, n) in &r.errors.0 {
            println!("  {n:>8}  {kind}");
        }
    }
    println!("result     {}", if r.passed { "PASS" } else { "FAIL" });
}
