//! Building and running the application: open the store, wire the router, bind, serve, shut down.

use crate::config::{Environment, Settings};
use crate::{auth_guard, client_ip, health, middleware};
use anyhow::Context;
use app::admin::bootstrap;
use app::auth::{Auth, AuthSettings};
use app::chat::{hub::Hub, socket_limits::SocketLimits, ChatLimits};
use app::protocol::CloseReason;
use app::{metrics::Metrics, shell, state::AppState, App};
use axum::{
    http::StatusCode,
    routing::{get, post},
    Router,
};
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::{RequestBodyTimeoutLayer, TimeoutLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

pub struct Application {
    listener: TcpListener,
    /// `METRICS_ADDR`: a listener serving only `/metrics`.
    metrics_listener: Option<TcpListener>,
    metrics: Arc<Metrics>,
    limits: crate::serve::ConnectionLimits,
    router: Router,
    grace: Duration,
    hub: Arc<Hub>,
    store: std::sync::Weak<dyn app::store::Store>,
}

impl Application {
    /// Opens the store, builds the router and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Fail at start-up, not at the first login, when the secret is missing or unusable.
        let jwt_secret = settings.load_jwt_secret()?;
        let store = app::store::open(&settings.store)
            .await
            .context("opening the store (check DATA_DIR or MONGODB_URI)")?;
        let auth = Arc::new(Auth::new(AuthSettings {
            jwt_secret: jwt_secret.into_bytes(),
            access_ttl_secs: settings.access_ttl_secs,
            refresh_ttl_secs: settings.refresh_ttl_secs,
            secure_cookies: settings.uses_https(),
            registrations_per_ip_per_hour: settings.registrations_per_ip_per_hour,
        }));
        // Before the first admin exists: only a store without accounts is a fresh install.
        if app::chat::default_room::create_on_fresh_install(&store, &settings.default_room).await? {
            tracing::info!(name = %settings.default_room, "default room created");
        }
        if let Some(admin) = &settings.admin_bootstrap {
            let outcome = bootstrap::bootstrap_admin_if_empty(
                &store,
                &auth.passwords,
                &admin.username,
                &admin.password,
            )
            .await
            .map_err(|e| anyhow::anyhow!("ADMIN_USERNAME/ADMIN_PASSWORD: {e}"))?;
            if let Some(outcome) = outcome {
                tracing::info!(username = %admin.username, ?outcome, "first admin set up from ADMIN_USERNAME");
            }
        }
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("binding {} (LEPTOS_SITE_ADDR / PORT)", settings.addr))?;
        let bound = listener.local_addr()?;
        let public_origin = settings.resolved_origin(bound);
        let leptos_options = leptos_options(&settings, bound)?;
        let push = app::push::Push::new(
            settings.push.keys(&settings.data_dir, &public_origin)?,
            settings.push.reach,
        );
        let hub = Hub::with_limits(settings.ws_queue_frames, settings.ws_silence);
        // Instances sharing a store (MongoDB) share their live events; the embedded store has no bus.
        if let Some(bus) = store
            .event_bus()
            .await
            .context("opening the event bus to other instances")?
        {
            hub.connect_peers(bus);
        }
        let state = AppState {
            leptos_options,
            store,
            metrics: Arc::new(Metrics::new()),
            auth,
            accounts: app::auth::cache::AccountCache::watching(&hub, settings.account_cache),
            hub,
            limits: Arc::new(ChatLimits::new(
                settings.messages_per_10s,
                settings.room_actions_per_10_min,
            )),
            sockets: SocketLimits::new(
                settings.websockets_per_user,
                settings.websockets_per_address,
            ),
            uploads: Arc::new(app::files::Uploads::new(
                settings.max_upload_bytes,
                settings.file_quota_bytes,
            )),
            push,
            public_origin: public_origin.clone().into(),
        };
        let store = Arc::downgrade(&state.store);
        state
            .push
            .start(store.clone(), state.hub.clone())
            .map_err(anyhow::Error::msg)?;
        tokio::spawn(housekeeping(store.clone()));
        let hub = state.hub.clone();
        let metrics = state.metrics.clone();
        let driver = state.store.driver();
        let router = router(state, &settings, &public_origin);
        let metrics_listener = match settings.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (METRICS_ADDR)"))?,
            ),
            None => None,
        };
        tracing::info!(
            addr = %listener.local_addr()?,
            store = driver,
            origin = %public_origin,
            "ML-CHAT is ready"
        );
        Ok(Self {
            listener,
            metrics_listener,
            metrics,
            limits: crate::serve::ConnectionLimits {
                header_read_timeout: settings.header_read_timeout,
                per_address: settings.connections_per_address,
                trusted_proxies: settings.trusted_proxies.clone(),
            },
            router,
            grace: settings.shutdown_grace,
            hub,
            store,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for at most the grace
    /// period.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let hub = self.hub.clone();
        let closing_hub = self.hub.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, draining");
            // Websockets would hold the drain open: tell their clients to reconnect elsewhere.
            closing_hub.close_all(CloseReason::ShuttingDown);
            let _ = stopping_tx.send(());
        };
        let serve = crate::serve::serve(self.listener, self.router, self.limits, signal);
        // The scrapers' listener stops with the main one.
        let (metrics_stop, metrics_stopped) = tokio::sync::watch::channel(false);
        if let Some(listener) = self.metrics_listener {
            let scrapes = Router::new()
                .route("/metrics", get(health::metrics))
                .with_state(self.metrics.clone());
            let mut stopped = metrics_stopped;
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(error) = axum::serve(listener, scrapes)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::warn!(%error, "the metrics listener failed");
                }
            });
        }
        let grace = self.grace;
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        // Upgraded websockets are no longer HTTP connections the server waits for: wait for their
        // tasks too, or the process would exit before they have told their clients why.
        let drained = async move {
            let served = serve.await;
            let _ = metrics_stop.send(true);
            served?;
            hub.sockets_closed().await;
            Ok::<_, std::io::Error>(())
        };
        let drained_in_time = tokio::select! {
            result = drained => { result.context("serving HTTP")?; true }
            () = deadline => { tracing::warn!(?grace, "connections still open after the grace period; closing them"); false }
        };
        if drained_in_time {
            released(self.store).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Waits until the last handle on the store is gone, which for the embedded store releases its file
/// lock: whoever runs next on the same data (a restart, `server admin`) can open it at once.
async fn released(store: std::sync::Weak<dyn app::store::Store>) {
    let started = std::time::Instant::now();
    while store.strong_count() > 0 {
        if started.elapsed() > Duration::from_secs(5) {
            tracing::warn!("the store is still in use 5 s after the server stopped");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn leptos_options(settings: &Settings, bound: SocketAddr) -> anyhow::Result<LeptosOptions> {
    // cargo-leptos sets these when it runs the server; the Dockerfile sets them for the release image.
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let env = match settings.environment {
        Environment::Production => Env::PROD,
        Environment::Development if var("LEPTOS_ENV", "DEV").eq_ignore_ascii_case("prod") => {
            Env::PROD
        }
        Environment::Development => Env::DEV,
    };
    Ok(LeptosOptions::builder()
        .output_name(var("LEPTOS_OUTPUT_NAME", "mlchat"))
        .site_root(var("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(var("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(bound)
        .env(env)
        .build())
}

/// The app's routes, generated once per process. Generating renders the whole app once with resource
/// loading suspended for the whole process (leptos_server's `SuppressResourceLoad` is one global flag),
/// and a resource first polled meanwhile by a page being rendered elsewhere in the process never
/// resolves: its page never finishes (leptos-rs/leptos#4773). So no server may generate them while
/// another serves pages, as a second `Application::build` in one process (the tests run many) would.
fn routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// How long one upload (or download) may take: 10 MiB over a slow phone link.
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn router(state: AppState, settings: &Settings, public_origin: &str) -> Router {
    let routes = routes();
    let security = middleware::SecurityHeaders::new(settings.uses_https());

    let scrapers = Router::new()
        .route("/metrics", get(health::metrics_with_token))
        .with_state(health::MetricsAccess {
            metrics: state.metrics.clone(),
            token: settings
                .metrics_token
                .as_ref()
                .map(|token| Arc::from(token.0.as_str())),
        });
    let options = &state.leptos_options;
    let worker = app::pwa::ServiceWorker::for_site(
        std::path::Path::new(&*options.site_root),
        &options.site_pkg_dir,
    );
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/sw.js",
            get(move || {
                let worker = worker.clone();
                async move { worker.response() }
            }),
        )
        .merge(scrapers)
        .route("/api/ws", get(app::chat::socket::upgrade))
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Innermost first: these see axum bodies; the tower-http stack below wraps them.
        // A client that sends its body slowly, or a request the server cannot answer in time, gets
        // 408 instead of holding a task.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(settings.request_timeout))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        // Uploads have their own size limit (checked while the body is read) and more time.
        .merge(
            Router::new()
                .route("/api/files", post(app::files::http::upload))
                .route("/api/files/usage", get(app::files::http::usage))
                .route(
                    "/api/profile/picture",
                    post(app::files::http::set_picture).delete(app::files::http::remove_picture),
                )
                .route("/api/files/{id}", get(app::files::http::download))
                .route(
                    "/api/files/{id}/thumbnail",
                    get(app::files::http::thumbnail),
                )
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    UPLOAD_TIMEOUT,
                ))
                .layer(RequestBodyTimeoutLayer::new(UPLOAD_TIMEOUT)),
        )
        .layer(axum::middleware::from_fn(
            middleware::client_errors_keep_their_status,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_guard::page_session,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(public_origin),
            auth_guard::refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_guard::guard_websocket_upgrade,
        ))
        .layer(axum::middleware::from_fn_with_state(
            security,
            middleware::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            middleware::record_metrics,
        ))
        // Outside every guard: sessions, throttles and the audit log all see the resolved client address.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(settings.trusted_proxies.clone()),
            client_ip::resolve,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(middleware::request_span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::cors(public_origin))
                .layer(CompressionLayer::new()),
        )
        .with_state(state)
}

/// Housekeeping, once an hour: deletes sessions (and their spent refresh-token hashes) that expired
/// (MongoDB also has a TTL index for this; the embedded store relies on it), and files nobody sent.
/// Ends with the store.
async fn housekeeping(store: std::sync::Weak<dyn app::store::Store>) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(60 * 60));
    loop {
        every_hour.tick().await;
        let Some(store) = store.upgrade() else { return };
        match store
            .purge_expired_sessions(app::model::Timestamp::now())
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sessions purged"),
            Err(error) => tracing::warn!(%error, "purging expired sessions failed"),
        }
        // Uploads nobody sent within a day, and bytes no file has pointed at for a day.
        let a_day_ago = app::model::Timestamp(app::model::Timestamp::now().0 - 24 * 60 * 60 * 1000);
        match store.clean_up_files(a_day_ago).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "unsent uploads cleaned up"),
            Err(error) => tracing::warn!(%error, "cleaning up files failed"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
