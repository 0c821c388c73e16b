//! `loadgen`: a load generator for ML-CHAT that goes through the product's real paths (registration,
//! login, rooms, `/api/ws`) and checks what the server promises: every acknowledged message reaches
//! every connection of its room exactly once. Loopback servers only. See `--help`.

mod bench;
mod cli;
mod conn;
mod members;
mod proc;
mod report;
mod setup;
mod stats;
mod wire;
mod ws;

use clap::Parser;
use cli::{Config, Scenario};
use conn::{ConnShared, Endpoint, Phase, Plan, Report, Shared, Spec};
use report::Summary;
use setup::{CallError, Http, Obtained, Session};
use stats::{Errors, Percentiles, RoomAcks, SharedHistogram, Verdict};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

fn main() -> ExitCode {
    // Subcommands beside the flat options of a load run, each parsed by its own parser and named
    // as it is typed.
    let first = std::env::args_os().nth(1);
    if let Some(sub @ ("read-bench" | "read-bench-server")) =
        first.as_ref().and_then(|a| a.to_str())
    {
        let args =
            std::iter::once(format!("loadgen {sub}").into()).chain(std::env::args_os().skip(2));
        return if sub == "read-bench" {
            bench::main(args)
        } else {
            bench::server::main(args)
        };
    }
    let config = match cli::Args::parse().into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("loadgen: {message}");
            return ExitCode::from(2);
        }
    };
    let threads = config
        .args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(config, threads)) {
        Ok(passed) if passed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Errors from setup and connect tasks, with a few details kept for the report.
#[derive(Default)]
struct Trouble {
    errors: Errors,
    samples: Vec<String>,
}

impl Trouble {
    fn add(&mut self, kind: &str, detail: &str) {
        self.errors.add(kind, 1);
        if self.samples.len() < 5 {
            self.samples.push(format!("{kind}: {detail}"));
        }
    }
}

/// Timings of the user setup, gathered by many tasks (once per user, so a mutex is fine).
#[derive(Default)]
struct SetupTimes {
    register_us: Vec<u64>,
    login_us: Vec<u64>,
    join_us: Vec<u64>,
    user_total_us: Vec<u64>,
    registered: usize,
    logged_in: usize,
    reused: usize,
    failed: usize,
}

/// Connect timings and failures, gathered once per connection.
#[derive(Default)]
struct ConnectTimes {
    upgrade_us: Vec<u64>,
    ready_us: Vec<u64>,
    established: usize,
    failed: usize,
}

/// Everything the setup and connect tasks share.
struct Ctx {
    cfg: Config,
    http: Http,
    endpoint: Endpoint,
    rooms: Vec<app::model::RoomId>,
    sessions: Vec<tokio::sync::Mutex<Option<Session>>>,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    permits: Semaphore,
    trouble: Mutex<Trouble>,
    setup: Mutex<SetupTimes>,
    connect: Mutex<ConnectTimes>,
    refreshed: AtomicUsize,
    /// Sessions from --sessions, by username.
    saved: std::collections::BTreeMap<String, String>,
    /// The room owner's username and cookies.
    owner: (String, String),
    /// The room index of each connection.
    conn_rooms: Vec<usize>,
    threads: usize,
    /// The open-file limit after raising it.
    nofile: u64,
    /// Connections done connecting (either way), for progress.
    attempted: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn mb(bytes: Option<u64>) -> Option<f64> {
    bytes.map(|b| b as f64 / (1024.0 * 1024.0))
}

impl Ctx {
    fn trouble(&self, kind: &str, detail: &str) {
        self.trouble
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(kind, detail);
    }

    fn username(&self, user: usize) -> String {
        format!("{}-{user}", self.cfg.prefix)
    }

    /// Signs user `user` in (a saved session if it still works, else as --auth says) and joins their
    /// room; stores the session.
    async fn prepare_user(&self, user: usize) -> bool {
        let name = self.username(user);
        let args = &self.cfg.args;
        let saved = match self.saved.get(&name) {
            Some(cookies) => self.reuse(user, cookies).await,
            None => None,
        };
        let signed_in = match saved {
            Some(session) => Ok((session, None)),
            None => self
                .http
                .sign_in(user, &name, &args.password, args.auth)
                .await
                .map(|(session, how)| (session, Some(how))),
        };
        let session = match signed_in {
            Ok((session, None)) => {
                self.setup.lock().unwrap_or_else(|e| e.into_inner()).reused += 1;
                session
            }
            Ok((session, Some(obtained))) => {
                let mut t = self.setup.lock().unwrap_or_else(|e| e.into_inner());
                match obtained {
                    Obtained::Registered(d) => {
                        t.registered += 1;
                        t.register_us.push(micros(d));
                    }
                    Obtained::LoggedIn(d) | Obtained::Both(_, d) => {
                        t.logged_in += 1;
                        t.login_us.push(micros(d));
                    }
                }
                session
            }
            Err(e) => return self.user_failed(&e),
        };
        let room = self.rooms[user % self.rooms.len()];
        let join_started = std::time::Instant::now();
        if let Err(e) = self.http.join(user, &session, room).await {
            return self.user_failed(&e);
        }
        self.setup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join_us
            .push(micros(join_started.elapsed()));
        *self.sessions[user].lock().await = Some(session);
        true
    }

    /// A saved session, if a token refresh still accepts it.
    async fn reuse(&self, via: usize, cookies: &str) -> Option<Session> {
        let mut session = Session::saved(cookies.to_owned());
        self.http.refresh(via, &mut session).await.ok()?;
        self.refreshed.fetch_add(1, Relaxed);
        Some(session)
    }

    /// Writes every current session to --sessions (keeping the file's other entries).
    async fn save_sessions(&self) {
        let Some(path) = &self.cfg.args.sessions else {
            return;
        };
        let mut all = self.saved.clone();
        all.insert(self.owner.0.clone(), self.owner.1.clone());
        for (user, slot) in self.sessions.iter().enumerate() {
            if let Some(session) = &*slot.lock().await {
                all.insert(self.username(user), session.cookie_header.clone());
            }
        }
        if let Err(e) = setup::save_sessions(path, &all) {
            eprintln!("loadgen: WARNING: {e:#}");
        }
    }

    fn user_failed(&self, e: &CallError) -> bool {
        self.setup.lock().unwrap_or_else(|e| e.into_inner()).failed += 1;
        self.trouble(&e.kind, &e.detail);
        false
    }

    /// Opens connection `spec` for its user (refreshing an old access token first, and once more if
    /// the upgrade answers 401), then runs it until told to stop.
    async fn connect(self: Arc<Self>, spec: Spec) -> Option<JoinHandle<Report>> {
        let outcome = self.try_connect(&spec).await;
        self.attempted.fetch_add(1, Relaxed);
        match outcome {
            Ok(established) => {
                match established.user {
                    Some(id) => self.shared.members.connected(spec.user, id),
                    None => self.shared.members.failed(spec.user),
                }
                {
                    let mut t = self.connect.lock().unwrap_or_else(|e| e.into_inner());
                    t.established += 1;
                    t.upgrade_us.push(micros(established.upgrade));
                    t.ready_us.push(micros(established.ready));
                }
                Some(tokio::spawn(conn::run(
                    spec,
                    established,
                    self.shared.clone(),
                    self.phase.clone(),
                )))
            }
            Err(e) => {
                self.shared.members.failed(spec.user);
                self.connect
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed += 1;
                self.trouble(&format!("connect: {}", e.kind), &e.detail);
                None
            }
        }
    }

    async fn try_connect(&self, spec: &Spec) -> Result<conn::Established, conn::ConnectError> {
        let no_session = || conn::ConnectError {
            kind: "no session (user setup failed)".into(),
            detail: format!("user {}", spec.user),
            unauthorized: false,
        };
        let cookies = self
            .fresh_cookies(spec.user, None)
            .await
            .ok_or_else(no_session)?;
        let timeout = self.endpoint.timeout;
        let attempt = |cookies: String| async move {
            tokio::time::timeout(
                timeout,
                conn::open(&self.endpoint, spec.source, &cookies, spec.room),
            )
            .await
            .unwrap_or_else(|_| {
                Err(conn::ConnectError {
                    kind: "timeout".into(),
                    detail: format!("no synced within {timeout:?}"),
                    unauthorized: false,
                })
            })
        };
        match attempt(cookies.clone()).await {
            Err(e) if e.unauthorized => {
                let renewed = self
                    .fresh_cookies(spec.user, Some(&cookies))
                    .await
                    .ok_or_else(no_session)?;
                attempt(renewed).await
            }
            other => other,
        }
    }

    /// The user's cookie header, refreshed if its access token is old or is `rejected`.
    async fn fresh_cookies(&self, user: usize, rejected: Option<&str>) -> Option<String> {
        let mut slot = self.sessions[user].lock().await;
        let session = slot.as_mut()?;
        let rejected_now = rejected.is_some_and(|r| r == session.cookie_header);
        if session.stale() || rejected_now {
            match self.http.refresh(user, session).await {
                Ok(()) => {
                    self.refreshed.fetch_add(1, Relaxed);
                }
                Err(e) => self.trouble(&e.kind, &e.detail),
            }
        }
        Some(session.cookie_header.clone())
    }
}

/// Runs one scenario; `Ok(true)` when it passed.
async fn run(cfg: Config, threads: usize) -> anyhow::Result<bool> {
    let run_started = proc::CpuMark::now(None);
    let args = cfg.args.clone();
    let pid = args.server_pid;
    let conns = cfg.connections;

    // Limits of this machine, checked before they bite.
    let nofile = match proc::raise_nofile_limit() {
        Ok((soft, hard)) => {
            eprintln!("loadgen: open-file limit raised to {soft} (hard limit {hard})");
            if (soft as usize) < conns + 200 {
                eprintln!(
                    "loadgen: WARNING: {conns} connections need more than {soft} open files; raise the hard \
                     limit (ulimit -Hn, systemd LimitNOFILE, docker --ulimit nofile=...) for loadgen and the server"
                );
            }
            soft
        }
        Err(e) => {
            eprintln!("loadgen: WARNING: could not raise the open-file limit: {e}");
            0
        }
    };
    if let Some(ports) = proc::ephemeral_ports() {
        let per_addr = conns.div_ceil(cfg.source_addrs.len());
        if per_addr as u64 + 1000 > ports {
            eprintln!(
                "loadgen: WARNING: {per_addr} connections per source address, but only {ports} ephemeral ports; use --source-addrs"
            );
        }
    }
    if let Some(pid) = pid {
        if proc::rss_bytes(Some(pid)).is_none() {
            anyhow::bail!("--server-pid {pid}: /proc/{pid}/status is not readable");
        }
    }
    let rss_start = pid.and_then(|p| proc::rss_bytes(Some(p)));

    let timeout = Duration::from_secs_f64(args.connect_timeout);
    let http = Http::new(
        &cfg.target.base,
        &cfg.origin,
        &cfg.source_addrs,
        timeout,
        args.connect_concurrency,
    )?;
    eprintln!(
        "loadgen: {} users ({}-0 ...), {} connections, {} rooms, {} senders, from {} source address(es)",
        args.users,
        cfg.prefix,
        conns,
        args.rooms,
        cfg.senders,
        cfg.source_addrs.len()
    );

    // The rooms, owned by a user that never connects (so no connection follows every room).
    let saved = match &args.sessions {
        Some(path) => setup::load_sessions(path)?,
        None => Default::default(),
    };
    let owner_name = format!("{}-owner", cfg.prefix);
    let mut owner = None;
    if let Some(cookies) = saved.get(&owner_name) {
        let mut session = Session::saved(cookies.clone());
        if http.refresh(0, &mut session).await.is_ok() {
            owner = Some(session);
        }
    }
    let owner = match owner {
        Some(session) => session,
        None => {
            http.sign_in(0, &owner_name, &args.password, args.auth)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("signing in the room owner {owner_name}: {}", e.detail)
                })?
                .0
        }
    };
    let room_names: Vec<String> = (0..args.rooms)
        .map(|i| format!("{}-room-{i}", cfg.prefix))
        .collect();
    let rooms = http
        .ensure_rooms(&owner, &room_names)
        .await
        .map_err(|e| anyhow::anyhow!("creating the rooms: {}", e.detail))?;

    // Connection c belongs to user c mod N, whose room is (c mod N) mod R.
    let conn_rooms: Vec<usize> = (0..conns).map(|c| (c % args.users) % args.rooms).collect();
    let ranks = stats::pick_senders(&conn_rooms, args.rooms, cfg.senders);
    let specs: Vec<Spec> = (0..conns)
        .map(|c| Spec {
            id: c as u32,
            user: c % args.users,
            room_idx: conn_rooms[c],
            room: rooms[conn_rooms[c]],
            source: cfg.source_addrs[c % cfg.source_addrs.len()],
            sender_rank: ranks[c],
        })
        .collect();

    let shards = (threads * 4).max(4);
    let shared = Arc::new(Shared {
        conns: (0..conns).map(|_| ConnShared::default()).collect(),
        room_targets: (0..args.rooms).map(|_| AtomicU64::new(0)).collect(),
        latency: SharedHistogram::new(shards),
        ack_latency: SharedHistogram::new(shards),
        senders: cfg.senders,
        rate: args.rate,
        max_inflight: args.max_inflight,
        body_size: args.body_size,
        watch: args.watch,
        members: members::Members::new(args.users, args.rooms, conns, args.watch),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let endpoint = Endpoint {
        addr: std::net::SocketAddr::new(cfg.target.ip, cfg.target.port),
        host: cfg.target.base.trim_start_matches("http://").to_owned(),
        path: "/api/ws".to_owned(),
        origin: cfg.origin.clone(),
        timeout,
    };
    let ctx = Arc::new(Ctx {
        http,
        endpoint,
        rooms,
        sessions: (0..args.users)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
        shared: shared.clone(),
        phase: phase_rx,
        permits: Semaphore::new(args.connect_concurrency),
        trouble: Mutex::default(),
        setup: Mutex::default(),
        connect: Mutex::default(),
        refreshed: AtomicUsize::new(0),
        saved,
        owner: (owner_name, owner.cookie_header.clone()),
        attempted: AtomicU64::new(0),
        conn_rooms: conn_rooms.clone(),
        threads,
        nofile,
        cfg: cfg.clone(),
    });

    let mut summary = Summary::default();
    let storm = args.scenario == Scenario::ConnectStorm;
    let progress_every = (args.progress > 0.0).then(|| Duration::from_secs_f64(args.progress));

    // Users, then connections (load), or each user straight through to its connections (storm).
    let setup_started = Instant::now();
    let (runs, rss_before_connect) = if storm {
        let rss_before_connect = pid.and_then(|p| proc::rss_bytes(Some(p)));
        let cpu_before = proc::CpuMark::now(pid);
        let mut user_tasks = Vec::with_capacity(args.users);
        for user in 0..args.users {
            let ctx = ctx.clone();
            let mine: Vec<Spec> = specs.iter().filter(|s| s.user == user).cloned().collect();
            user_tasks.push(tokio::spawn(async move {
                let _permit = ctx.permits.acquire().await.expect("never closed");
                let started = std::time::Instant::now();
                let ready = ctx.prepare_user(user).await;
                let mut runs = Vec::new();
                for spec in mine {
                    if ready {
                        let run = ctx.clone().connect(spec).await;
                        if runs.is_empty() && run.is_some() {
                            // Login (or registration) + join + first connection up to `synced`.
                            let mut t = ctx.setup.lock().unwrap_or_else(|e| e.into_inner());
                            t.user_total_us.push(micros(started.elapsed()));
                        }
                        runs.push(run);
                    } else {
                        ctx.shared.members.failed(spec.user);
                        ctx.connect.lock().unwrap_or_else(|e| e.into_inner()).failed += 1;
                    }
                }
                runs
            }));
        }
        let done = wait_with_progress(user_tasks, progress_every, "users done", || {
            format!("{} connections tried", ctx.attempted.load(Relaxed))
        })
        .await;
        summary.setup.wall_secs = setup_started.elapsed().as_secs_f64();
        summary.connect.wall_secs = summary.setup.wall_secs;
        ctx.save_sessions().await;
        (
            summary.connect.loadgen_cpu_percent,
            summary.connect.server_cpu_percent,
        ) = cpu_before.percent_until(&proc::CpuMark::now(pid));
        let runs: Vec<_> = done.into_iter().flatten().flatten().collect();
        (runs, rss_before_connect)
    } else {
        let mut user_tasks = Vec::with_capacity(args.users);
        for user in 0..args.users {
            let ctx = ctx.clone();
            user_tasks.push(tokio::spawn(async move {
                let _permit = ctx.permits.acquire().await.expect("never closed");
                ctx.prepare_user(user).await
            }));
        }
        wait_with_progress(user_tasks, progress_every, "users done", String::new).await;
        summary.setup.wall_secs = setup_started.elapsed().as_secs_f64();
        ctx.save_sessions().await;
        if args.settle > 0.0 {
            eprintln!("loadgen: settling for {} s before connecting", args.settle);
            tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        }
        let rss_before_connect = pid.and_then(|p| proc::rss_bytes(Some(p)));
        let cpu_before = proc::CpuMark::now(pid);
        let connect_started = Instant::now();
        let mut connect_tasks = Vec::with_capacity(conns);
        for spec in specs {
            let ctx = ctx.clone();
            connect_tasks.push(tokio::spawn(async move {
                // The permit bounds connecting only; `connect` returns once the connection runs.
                let _permit = ctx.permits.acquire().await.expect("never closed");
                ctx.clone().connect(spec).await
            }));
        }
        let done = wait_with_progress(
            connect_tasks,
            progress_every,
            "connections tried",
            String::new,
        )
        .await;
        summary.connect.wall_secs = connect_started.elapsed().as_secs_f64();
        (
            summary.connect.loadgen_cpu_percent,
            summary.connect.server_cpu_percent,
        ) = cpu_before.percent_until(&proc::CpuMark::now(pid));
        (done.into_iter().flatten().collect(), rss_before_connect)
    };
    finish(
        ctx,
        runs,
        summary,
        phase_tx,
        rss_start,
        rss_before_connect,
        run_started,
    )
    .await
}

/// Awaits every task, printing how many are done every `every`.
async fn wait_with_progress<T: Send + 'static>(
    tasks: Vec<JoinHandle<T>>,
    every: Option<Duration>,
    what: &str,
    extra: impl Fn() -> String,
) -> Vec<Option<T>> {
    let total = tasks.len();
    let done = Arc::new(AtomicUsize::new(0));
    let watched: Vec<_> = tasks
        .into_iter()
        .map(|t| {
            let done = done.clone();
            async move {
                let r = t.await.ok();
                done.fetch_add(1, Relaxed);
                r
            }
        })
        .collect();
    let all = futures::future::join_all(watched);
    tokio::pin!(all);
    let started = Instant::now();
    loop {
        let tick = tokio::time::sleep(every.unwrap_or(Duration::from_secs(86_400)));
        tokio::select! {
            results = &mut all => return results,
            () = tick, if every.is_some() => {
                let n = done.load(Relaxed);
                eprintln!(
                    "loadgen: {:>6.1} s  {n}/{total} {what}  {}",
                    started.elapsed().as_secs_f64(),
                    extra()
                );
            }
        }
    }
}

/// Sends (or holds), drains, measures and reports. `runs`: the running connections.
async fn finish(
    ctx: Arc<Ctx>,
    runs: Vec<Option<JoinHandle<Report>>>,
    mut summary: Summary,
    phase_tx: watch::Sender<Phase>,
    rss_start: Option<u64>,
    rss_before_connect: Option<u64>,
    run_started: proc::CpuMark,
) -> anyhow::Result<bool> {
    let shared = ctx.shared.clone();
    let cfg = &ctx.cfg;
    let args = &cfg.args;
    let pid = args.server_pid;
    let runs: Vec<JoinHandle<Report>> = runs.into_iter().flatten().collect();
    let rss_after_connect = pid.and_then(|p| proc::rss_bytes(Some(p)));
    {
        let t = ctx.connect.lock().unwrap_or_else(|e| e.into_inner());
        summary.connect.established = t.established;
        summary.connect.failed = t.failed;
        summary.connect.upgrade = Percentiles::of_micros(&t.upgrade_us);
        summary.connect.ready = Percentiles::of_micros(&t.ready_us);
        summary.connect.per_sec = t.established as f64 / summary.connect.wall_secs.max(1e-9);
    }
    eprintln!(
        "loadgen: {} connections established, {} failed, in {:.1} s",
        summary.connect.established, summary.connect.failed, summary.connect.wall_secs
    );

    // The send window: warm-up, then the measured part.
    let warmup = Duration::from_secs_f64(cfg.warmup);
    let window = Duration::from_secs_f64(cfg.duration);
    let cpu_before = proc::CpuMark::now(pid);
    let mut drained = true;
    let mut drain_secs = 0.0;
    if !(warmup + window).is_zero() {
        let start = Instant::now();
        let now_ns = wire::unix_nanos();
        let plan = Plan {
            start,
            send_until: start + warmup + window,
            measure_from_ns: now_ns + warmup.as_nanos() as u64,
            measure_to_ns: now_ns + (warmup + window).as_nanos() as u64,
        };
        phase_tx.send_replace(Phase::Run(plan));
        eprintln!(
            "loadgen: {} {:.1} s warm-up + {:.1} s measured",
            if cfg.senders > 0 {
                "sending:"
            } else {
                "holding idle connections:"
            },
            cfg.warmup,
            cfg.duration
        );
        progress_until(&shared, plan.send_until, args.progress).await;

        // Drain: every sender has its acks (or gave up), then every open connection has caught up.
        let drain_started = Instant::now();
        let deadline = drain_started + Duration::from_secs_f64(args.drain_timeout);
        drained = false;
        while Instant::now() < deadline {
            let senders_busy = shared.conns.iter().any(|c| c.busy_sending.load(Relaxed));
            if !senders_busy && caught_up(&shared, &ctx.conn_rooms) {
                drained = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drain_secs = drain_started.elapsed().as_secs_f64();
    }
    let cpu_after = proc::CpuMark::now(pid);
    let rss_end = pid.and_then(|p| proc::rss_bytes(Some(p)));
    phase_tx.send_replace(Phase::Stop);
    let reports: Vec<Report> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    let run_ended = proc::CpuMark::now(None);
    // Connecting may have refreshed tokens (which spends the old refresh tokens).
    ctx.save_sessions().await;

    // Merge what the connections counted, then check exactly-once per room.
    let mut counts = stats::Counts::default();
    let mut errors = Errors::default();
    let mut room_acks: Vec<RoomAcks> = vec![RoomAcks::default(); args.rooms];
    for r in &reports {
        counts.add(&r.counts);
        errors.merge(&r.errors);
        for &seq in &r.acked_seqs {
            room_acks[r.room_idx].add(seq);
        }
    }
    let mut verdict = Verdict::default();
    let mut checked = 0;
    for r in reports.iter().filter(|r| r.open_at_end) {
        verdict.add(stats::check(&r.deliveries, &room_acks[r.room_idx]));
        checked += 1;
    }
    let trouble = std::mem::take(&mut *ctx.trouble.lock().unwrap_or_else(|e| e.into_inner()));
    errors.merge(&trouble.errors);
    errors.add("sends without an answer at the end", counts.unacked_at_end);

    let setup = std::mem::take(&mut *ctx.setup.lock().unwrap_or_else(|e| e.into_inner()));
    summary.settings = report::Settings {
        url: cfg.target.base.clone(),
        origin: cfg.origin.clone(),
        scenario: cli::value_name(args.scenario),
        users: args.users,
        connections: cfg.connections,
        rooms: args.rooms,
        senders: cfg.senders,
        rate: args.rate,
        max_inflight: args.max_inflight,
        warmup_secs: cfg.warmup,
        duration_secs: cfg.duration,
        body_size: args.body_size,
        connect_concurrency: args.connect_concurrency,
        source_addrs: cfg.source_addrs.len(),
        user_prefix: cfg.prefix.clone(),
        auth: cli::value_name(args.auth),
        threads: ctx.threads,
        watch: args.watch,
    };
    summary.receive = report::Receive {
        frames: counts.frames,
        items: counts.items,
        slow_path_items: counts.slow_items,
    };
    summary.presence = report::PresenceSummary {
        watch: args.watch,
        watches_sent: counts.watch_sent,
        watched_users: counts.watched_users,
        frames: counts.presence_frames,
        changes: counts.presence_changes,
    };
    summary.setup.users_ok = args.users - setup.failed;
    summary.setup.per_sec = summary.setup.users_ok as f64 / summary.setup.wall_secs.max(1e-9);
    summary.setup.registered = setup.registered;
    summary.setup.logged_in = setup.logged_in;
    summary.setup.reused = setup.reused;
    summary.setup.failed = setup.failed;
    summary.setup.register = Percentiles::of_micros(&setup.register_us);
    summary.setup.login = Percentiles::of_micros(&setup.login_us);
    summary.setup.join = Percentiles::of_micros(&setup.join_us);
    summary.setup.refreshed = ctx.refreshed.load(Relaxed);
    summary.connect.user_total = Percentiles::of_micros(&setup.user_total_us);

    let secs = cfg.duration.max(1e-9);
    summary.traffic = report::Traffic {
        window_secs: cfg.duration,
        sent_total: counts.sent,
        acked_total: counts.acked,
        delivered_total: counts.delivered,
        sent_measured: counts.sent_measured,
        acked_measured: counts.acked_measured,
        delivered_measured: counts.delivered_measured,
        sent_per_sec: counts.sent_measured as f64 / secs,
        acked_per_sec: counts.acked_measured as f64 / secs,
        delivered_per_sec: counts.delivered_measured as f64 / secs,
        failed_sends: counts.failed_sends,
        unacked_at_end: counts.unacked_at_end,
        latency: Percentiles::of(&shared.latency.merged()),
        ack_latency: Percentiles::of(&shared.ack_latency.merged()),
        max_schedule_lag_ms: counts.max_lag_us as f64 / 1000.0,
        drain_secs,
        drained,
    };
    summary.delivery = report::Delivery {
        acked_messages: room_acks.iter().map(|a| a.count).sum(),
        verdict,
        checked_connections: checked,
        unchecked_connections: reports.len() - checked,
        reused_seqs: room_acks.iter().map(|a| a.reused_seqs).sum(),
        foreign_messages: counts.foreign_messages,
    };
    errors.add(
        "sequence numbers acknowledged twice",
        summary.delivery.reused_seqs,
    );

    let established = summary.connect.established.max(1) as f64;
    // Over a zero-length window the figures would be noise.
    let (own_cpu, server_cpu) = if (warmup + window).is_zero() {
        (None, None)
    } else {
        cpu_before.percent_until(&cpu_after)
    };
    summary.resources = report::Resources {
        server_pid: pid,
        server_rss_start_mb: mb(rss_start),
        server_rss_before_connect_mb: mb(rss_before_connect),
        server_rss_after_connect_mb: mb(rss_after_connect),
        server_rss_end_mb: mb(rss_end),
        // In a connect storm the logins (argon2) grow the server's memory too: no per-connection figure.
        server_rss_per_connection_kb: match (rss_before_connect, rss_end, args.scenario) {
            (Some(before), Some(end), Scenario::Load) => {
                Some((end as f64 - before as f64) / established / 1024.0)
            }
            _ => None,
        },
        server_rss_per_connection_at_connect_kb: match (
            rss_before_connect,
            rss_after_connect,
            args.scenario,
        ) {
            (Some(before), Some(after), Scenario::Load) => {
                Some((after as f64 - before as f64) / established / 1024.0)
            }
            _ => None,
        },
        server_cpu_percent: server_cpu,
        loadgen_cpu_percent: own_cpu,
        loadgen_cpu_percent_total: run_started.percent_until(&run_ended).0,
        loadgen_rss_end_mb: mb(proc::rss_bytes(None)),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        nofile_limit: ctx.nofile,
    };
    // Messages were acknowledged but no connection was expected to receive any: the connections do not
    // follow the senders' rooms, so the exactly-once check proved nothing.
    let unchecked = summary.delivery.acked_messages > 0 && verdict.expected == 0;
    if unchecked {
        eprintln!(
            "loadgen: FAIL: messages were acknowledged but no connection follows their rooms"
        );
    }
    summary.passed = errors.total() == 0
        && !unchecked
        && verdict.lost == 0
        && verdict.duplicated == 0
        && summary.connect.failed == 0
        && summary.setup.failed == 0;
    summary.errors = errors;
    summary.error_samples = trouble.samples;

    summary.print();
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json + "\n")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        eprintln!("loadgen: results written to {}", path.display());
    }
    Ok(summary.passed || args.allow_errors)
}

/// Whether every open connection has received its room's highest acknowledged message.
fn caught_up(shared: &Shared, conn_rooms: &[usize]) -> bool {
    shared.conns.iter().zip(conn_rooms).all(|(conn, &room)| {
        !conn.open.load(Relaxed)
            || conn.highest_seq.load(Relaxed) >= shared.room_targets[room].load(Relaxed)
    })
}

/// Waits until `until`, printing rates every `every` seconds.
async fn progress_until(shared: &Shared, until: Instant, every: f64) {
    let totals = |shared: &Shared| {
        shared
            .conns
            .iter()
            .fold((0u64, 0u64, 0u64, 0usize), |acc, c| {
                (
                    acc.0 + c.sent.load(Relaxed),
                    acc.1 + c.acked.load(Relaxed),
                    acc.2 + c.delivered.load(Relaxed),
                    acc.3 + usize::from(c.open.load(Relaxed)),
                )
            })
    };
    if every <= 0.0 {
        tokio::time::sleep_until(until).await;
        return;
    }
    let step = Duration::from_secs_f64(every);
    let started = Instant::now();
    let mut last = (0, 0, 0, 0);
    let mut last_at = Instant::now();
    while Instant::now() < until {
        tokio::time::sleep_until((Instant::now() + step).min(until)).await;
        let now = totals(shared);
        let dt = last_at.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "loadgen: {:>6.1} s  open {}  sent {:.0}/s  acked {:.0}/s  delivered {:.0}/s",
            started.elapsed().as_secs_f64(),
            now.3,
            (now.0 - last.0) as f64 / dt,
            (now.1 - last.1) as f64 / dt,
            (now.2 - last.2) as f64 / dt,
        );
        last = now;
        last_at = Instant::now();
    }
}
