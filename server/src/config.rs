//! Configuration from environment variables. Every variable is documented in the README with its default;
//! an invalid value stops start-up with a message that names the variable.

use app::store::StoreSettings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The smallest JWT secret we accept, in bytes (HS256 wants at least its output size).
pub const MIN_JWT_SECRET_LEN: usize = 32;
const JWT_SECRET_FILE: &str = "jwt_secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where the JWT signing secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtSecret {
    /// Given by `JWT_SECRET`.
    Given(String),
    /// Development only: generated on first start and kept in the data directory.
    GenerateInDataDir,
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtSecret::Given(_) => f.write_str("Given(<redacted>)"),
            JwtSecret::GenerateInDataDir => f.write_str("GenerateInDataDir"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    /// Where to listen (`LEPTOS_SITE_ADDR`, port overridden by `PORT`).
    pub addr: SocketAddr,
    /// The origin browsers use to reach us: CORS, CSRF and websocket `Origin` checks compare against it.
    /// `None` means "http://<bound address>", resolved once the listener is bound.
    pub public_origin: Option<String>,
    pub data_dir: PathBuf,
    pub store: StoreSettings,
    pub jwt_secret: JwtSecret,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// `MAX_UPLOAD_BYTES`: the largest file one upload may carry.
    pub max_upload_bytes: u64,
    /// `FILE_QUOTA_BYTES`: what one person's files may take in all.
    pub file_quota_bytes: u64,
    /// How long in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// Lifetime of an access token (`ACCESS_TOKEN_TTL_SECS`, at most 15 minutes).
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token, renewed at every use (`REFRESH_TOKEN_TTL_DAYS`).
    pub refresh_ttl_secs: u64,
    /// `REGISTRATIONS_PER_IP_PER_HOUR`.
    pub registrations_per_ip_per_hour: u32,
    /// `MESSAGES_PER_10S`: new messages one user may send in ten seconds.
    pub messages_per_10s: u32,
    /// `ROOM_ACTIONS_PER_10_MIN`: rooms created, invitations and direct messages opened by one user.
    pub room_actions_per_10_min: u32,
    /// `WS_QUEUE_FRAMES`: events one websocket may have waiting before it is closed as too slow.
    pub ws_queue_frames: usize,
    /// `WS_SILENCE_SECS`: a websocket that sends nothing (not even a ping) for this long is closed.
    pub ws_silence: Duration,
    /// `ACCOUNT_CACHE_SECS`: how long a cached session or account is trusted without a change notice
    /// (0: not cached).
    pub account_cache: Duration,
    /// `DEFAULT_ROOM`: the public room a fresh install creates and every new account joins
    /// ("general"; set it empty for none).
    pub default_room: String,
    /// `ADMIN_USERNAME` / `ADMIN_PASSWORD`: an admin created on the first start of an empty instance.
    pub admin_bootstrap: Option<AdminBootstrap>,
    /// `TRUSTED_PROXIES`: reverse proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// `METRICS_ADDR`: a second listener that serves only `/metrics`, for a scraper on a private network.
    pub metrics_addr: Option<SocketAddr>,
    /// `METRICS_TOKEN`: with it, `/metrics` on the main listener answers a scraper that sends
    /// `Authorization: Bearer <token>`; without it, the main listener has no `/metrics`.
    pub metrics_token: Option<MetricsToken>,
    /// `HEADER_READ_TIMEOUT_SECS`: a request's head must arrive within this.
    pub header_read_timeout: Duration,
    /// `REQUEST_TIMEOUT_SECS`: a request must be answered (its head, and its body read) within this.
    pub request_timeout: Duration,
    /// `CONNECTIONS_PER_ADDRESS`: open connections one client address may hold (trusted proxies: any).
    pub connections_per_address: usize,
    /// `WEBSOCKETS_PER_USER` and `WEBSOCKETS_PER_ADDRESS`: open live connections.
    pub websockets_per_user: usize,
    pub websockets_per_address: usize,
    /// Web push: the VAPID key, its subject, where pushes may go.
    pub push: crate::push_settings::PushSettings,
}

/// The bearer token scrapers present for `/metrics`; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(pub String);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// The first admin, from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminBootstrap {
    pub username: String,
    pub password: String,
}

/// The smallest metrics bearer token accepted.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

pub(crate) fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get`, so tests can pass a map instead of the real environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let environment = match var("APP_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "APP_ENV",
                    format!("expected `development` or `production`, got {other:?}"),
                ))
            }
        };

        let mut addr: SocketAddr = match var("LEPTOS_SITE_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => v.parse().map_err(|_| {
                invalid(
                    "LEPTOS_SITE_ADDR",
                    format!("expected host:port such as 127.0.0.1:3000, got {v:?}"),
                )
            })?,
        };
        if let Some(port) = var("PORT") {
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("PORT", format!("expected a port number, got {port:?}")))?;
            addr.set_port(port);
        }

        let public_origin = match var("PUBLIC_ORIGIN") {
            // Over plain http, cookies travel in clear: production needs https unless told otherwise
            // (a trial on a laptop, or TLS ended by a proxy on the same host).
            Some(origin)
                if environment == Environment::Production
                    && origin.starts_with("http://")
                    && var("ALLOW_HTTP_ORIGIN").as_deref() != Some("true") =>
            {
                return Err(invalid(
                    "PUBLIC_ORIGIN",
                    "must be https:// in production (set ALLOW_HTTP_ORIGIN=true to allow http anyway)",
                ))
            }
            Some(origin) => Some(parse_origin(&origin)?),
            None if environment == Environment::Production => {
                return Err(invalid(
                    "PUBLIC_ORIGIN",
                    "required in production: the https origin users reach, e.g. https://chat.example.com",
                ))
            }
            None => None,
        };

        let data_dir = PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "data".to_owned()));

        let store = match var("MONGODB_URI") {
            Some(uri) => {
                if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
                    return Err(invalid(
                        "MONGODB_URI",
                        "expected a mongodb:// or mongodb+srv:// URI",
                    ));
                }
                let database = var("MONGODB_DB").unwrap_or_else(|| "mlchat".to_owned());
                let valid_name = !database.is_empty()
                    && database.len() <= 63
                    && database
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid_name {
                    return Err(invalid(
                        "MONGODB_DB",
                        "expected 1-63 characters of letters, digits, `_` or `-`",
                    ));
                }
                StoreSettings::Mongo { uri, database }
            }
            None => StoreSettings::Embedded {
                data_dir: data_dir.clone(),
            },
        };

        let jwt_secret = match var("JWT_SECRET") {
            Some(secret) if secret.len() < MIN_JWT_SECRET_LEN => {
                return Err(invalid(
                    "JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_LEN} bytes (try `openssl rand -hex 32`)"),
                ))
            }
            Some(secret) => JwtSecret::Given(secret),
            None if environment == Environment::Production => {
                return Err(invalid(
                    "JWT_SECRET",
                    "required in production (APP_ENV=production); generate one with `openssl rand -hex 32` \
                     and give every instance the same value",
                ))
            }
            None => JwtSecret::GenerateInDataDir,
        };

        let log_filter = var("RUST_LOG").unwrap_or_else(|| "info".to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| invalid("RUST_LOG", e.to_string()))?;
        let log_format = match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("expected `pretty` or `json`, got {other:?}"),
                ))
            }
        };

        let max_body_bytes =
            parse_number(&var, "MAX_BODY_BYTES", 64 * 1024, 1024, 64 * 1024 * 1024)?;
        let max_upload_bytes = parse_number(
            &var,
            "MAX_UPLOAD_BYTES",
            app::files::DEFAULT_MAX_UPLOAD_BYTES as usize,
            1024,
            1024 * 1024 * 1024,
        )?;
        let file_quota_bytes = parse_number(
            &var,
            "FILE_QUOTA_BYTES",
            app::files::DEFAULT_QUOTA_BYTES as usize,
            1024,
            usize::MAX,
        )?;
        let grace_secs = parse_number(&var, "SHUTDOWN_GRACE_SECS", 10, 0, 600)?;
        let access_ttl_secs = parse_number(&var, "ACCESS_TOKEN_TTL_SECS", 900, 1, 900)?;
        let refresh_ttl_days = parse_number(&var, "REFRESH_TOKEN_TTL_DAYS", 30, 1, 365)?;
        let registrations_per_ip_per_hour =
            parse_number(&var, "REGISTRATIONS_PER_IP_PER_HOUR", 10, 1, 1_000_000)?;
        let trusted_proxies =
            crate::client_ip::TrustedProxies::parse(&var("TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|reason| invalid("TRUSTED_PROXIES", reason))?;
        let messages_per_10s = parse_number(&var, "MESSAGES_PER_10S", 20, 1, 1_000_000)?;
        let room_actions_per_10_min =
            parse_number(&var, "ROOM_ACTIONS_PER_10_MIN", 30, 1, 1_000_000)?;
        let ws_queue_frames = parse_number(&var, "WS_QUEUE_FRAMES", 4096, 16, 1_000_000)?;
        let ws_silence_secs = parse_number(&var, "WS_SILENCE_SECS", 60, 30, 3600)?;
        let account_cache_secs = parse_number(&var, "ACCOUNT_CACHE_SECS", 10, 0, 86_400)?;
        let default_room = match get("DEFAULT_ROOM") {
            Some(name) => name.trim().to_owned(),
            None => "general".to_owned(),
        };
        if !default_room.is_empty() {
            app::domain::RoomName::parse(&default_room)
                .map_err(|e| invalid("DEFAULT_ROOM", e.to_string()))?;
        }
        let admin_bootstrap = match (var("ADMIN_USERNAME"), get("ADMIN_PASSWORD")) {
            (Some(username), Some(password)) if !password.is_empty() => {
                Some(AdminBootstrap { username, password })
            }
            (Some(_), _) => {
                return Err(invalid(
                    "ADMIN_PASSWORD",
                    "required when ADMIN_USERNAME is set",
                ))
            }
            // The password alone is what `server admin create` reads.
            (None, _) => None,
        };

        let metrics_addr = match var("METRICS_ADDR") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| {
                invalid(
                    "METRICS_ADDR",
                    format!("expected host:port such as 127.0.0.1:9100, got {v:?}"),
                )
            })?),
        };
        let metrics_token = match var("METRICS_TOKEN") {
            Some(token) if token.len() < MIN_METRICS_TOKEN_LEN => {
                return Err(invalid(
                    "METRICS_TOKEN",
                    format!("must be at least {MIN_METRICS_TOKEN_LEN} characters"),
                ))
            }
            other => other.map(MetricsToken),
        };

        let header_read_timeout = parse_number(&var, "HEADER_READ_TIMEOUT_SECS", 10, 1, 300)?;
        let request_timeout = parse_number(&var, "REQUEST_TIMEOUT_SECS", 30, 1, 600)?;
        let connections_per_address =
            parse_number(&var, "CONNECTIONS_PER_ADDRESS", 256, 1, 1_000_000)?;
        let websockets_per_user = parse_number(&var, "WEBSOCKETS_PER_USER", 20, 1, 100_000)?;
        let websockets_per_address =
            parse_number(&var, "WEBSOCKETS_PER_ADDRESS", 200, 1, 1_000_000)?;

        let push = crate::push_settings::PushSettings::from_env(&var, environment)?;

        Ok(Self {
            environment,
            addr,
            public_origin,
            data_dir,
            store,
            jwt_secret,
            log_filter,
            log_format,
            max_body_bytes,
            max_upload_bytes: max_upload_bytes as u64,
            file_quota_bytes: file_quota_bytes as u64,
            shutdown_grace: Duration::from_secs(grace_secs as u64),
            access_ttl_secs: access_ttl_secs as u64,
            refresh_ttl_secs: refresh_ttl_days as u64 * 24 * 60 * 60,
            registrations_per_ip_per_hour: registrations_per_ip_per_hour as u32,
            trusted_proxies,
            messages_per_10s: messages_per_10s as u32,
            room_actions_per_10_min: room_actions_per_10_min as u32,
            ws_queue_frames,
            ws_silence: Duration::from_secs(ws_silence_secs as u64),
            account_cache: Duration::from_secs(account_cache_secs as u64),
            default_room,
            admin_bootstrap,
            metrics_addr,
            metrics_token,
            header_read_timeout: Duration::from_secs(header_read_timeout as u64),
            request_timeout: Duration::from_secs(request_timeout as u64),
            connections_per_address,
            websockets_per_user,
            websockets_per_address,
            push,
        })
    }

    /// The public origin, given the address the listener is bound to.
    pub fn resolved_origin(&self, bound: std::net::SocketAddr) -> String {
        self.public_origin
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Cookies get `Secure` (and responses HSTS) when users reach us over https.
    pub fn uses_https(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }

    /// The JWT secret: the configured one, or (development) the one kept in the data directory, created
    /// on first start.
    pub fn load_jwt_secret(&self) -> Result<String, ConfigError> {
        match &self.jwt_secret {
            JwtSecret::Given(secret) => Ok(secret.clone()),
            JwtSecret::GenerateInDataDir => load_or_create_secret(&self.data_dir),
        }
    }
}

fn parse_number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            format!("expected a whole number from {min} to {max}, got {raw:?}"),
        )),
    }
}

/// Accepts `scheme://host[:port]` with no path, and returns it without a trailing slash.
fn parse_origin(origin: &str) -> Result<String, ConfigError> {
    let origin = origin.trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                "PUBLIC_ORIGIN",
                format!("expected http(s)://host[:port], got {origin:?}"),
            )
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid(
            "PUBLIC_ORIGIN",
            format!("expected an origin with no path, query or credentials, got {origin:?}"),
        ));
    }
    Ok(origin.to_owned())
}

fn load_or_create_secret(data_dir: &std::path::Path) -> Result<String, ConfigError> {
    use rand::RngCore;
    let path = data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_LEN => {
            return Ok(secret.trim().to_owned())
        }
        Ok(_) => {
            return Err(invalid(
                "JWT_SECRET",
                format!(
                    "{} is too short; delete it to generate a new one",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(invalid(
                "JWT_SECRET",
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        write_private_file(&path, secret.as_bytes())
    };
    write().map_err(|e| {
        invalid(
            "DATA_DIR",
            format!(
                "cannot store the generated JWT secret in {}: {e}",
                path.display()
            ),
        )
    })?;
    Ok(secret)
}

/// Writes a file readable only by its owner.
pub(crate) fn write_private_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_suit_local_development() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.resolved_origin(s.addr), "http://127.0.0.1:3000");
        assert!(matches!(s.store, StoreSettings::Embedded { .. }));
        assert_eq!(s.jwt_secret, JwtSecret::GenerateInDataDir);
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert!(!s.uses_https());
    }

    #[test]
    fn port_overrides_the_bind_port() {
        let s = settings(&[("LEPTOS_SITE_ADDR", "0.0.0.0:3000"), ("PORT", "8080")]).unwrap();
        assert_eq!(s.addr.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn mongodb_uri_selects_the_mongo_driver() {
        let s = settings(&[
            ("MONGODB_URI", "mongodb://db:27017"),
            ("MONGODB_DB", "chat"),
        ])
        .unwrap();
        match s.store {
            StoreSettings::Mongo { uri, database } => {
                assert_eq!(
                    (uri.as_str(), database.as_str()),
                    ("mongodb://db:27017", "chat")
                )
            }
            other => panic!("expected mongo, got {other:?}"),
        }
    }

    #[test]
    fn production_requires_a_jwt_secret_a_push_key_and_an_origin() {
        let err = settings(&[
            ("APP_ENV", "production"),
            ("PUBLIC_ORIGIN", "https://chat.example.com"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        let err =
            settings(&[("APP_ENV", "production"), ("JWT_SECRET", &"x".repeat(40))]).unwrap_err();
        assert_eq!(err.var, "PUBLIC_ORIGIN");
        let without_push_key = [
            ("APP_ENV", "production"),
            ("JWT_SECRET", &"x".repeat(40)),
            ("PUBLIC_ORIGIN", "https://chat.example.com/"),
        ];
        assert_eq!(
            settings(&without_push_key).unwrap_err().var,
            "VAPID_PRIVATE_KEY"
        );
        let vapid = app::push::VapidKeys::generate_private_key();
        let mut complete = without_push_key.to_vec();
        complete.push(("VAPID_PRIVATE_KEY", &vapid));
        let ok = settings(&complete).unwrap();
        assert_eq!(
            ok.public_origin.as_deref(),
            Some("https://chat.example.com")
        );
        assert!(ok.uses_https());
        // Plain http in production only when asked for explicitly.
        let http = [
            ("APP_ENV", "production"),
            ("JWT_SECRET", &"x".repeat(40)),
            ("VAPID_PRIVATE_KEY", &vapid),
            ("PUBLIC_ORIGIN", "http://chat.example.com"),
        ];
        assert_eq!(settings(&http).unwrap_err().var, "PUBLIC_ORIGIN");
        let mut allowed = http.to_vec();
        allowed.push(("ALLOW_HTTP_ORIGIN", "true"));
        assert!(!settings(&allowed).unwrap().uses_https());
    }

    #[test]
    fn metrics_and_connection_limits_are_read() {
        let s = settings(&[
            ("METRICS_ADDR", "127.0.0.1:9100"),
            ("METRICS_TOKEN", "a-long-enough-scrape-token"),
            ("HEADER_READ_TIMEOUT_SECS", "5"),
            ("CONNECTIONS_PER_ADDRESS", "64"),
        ])
        .unwrap();
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(
            s.metrics_token,
            Some(MetricsToken("a-long-enough-scrape-token".into()))
        );
        assert!(
            !format!("{s:?}").contains("scrape-token"),
            "the token is never printed"
        );
        assert_eq!(s.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.connections_per_address, 64);
        assert_eq!(
            settings(&[("METRICS_TOKEN", "short")]).unwrap_err().var,
            "METRICS_TOKEN"
        );
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (var, value) in [
            ("APP_ENV", "staging"),
            ("LEPTOS_SITE_ADDR", "localhost"),
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("PUBLIC_ORIGIN", "chat.example.com"),
            ("PUBLIC_ORIGIN", "https://chat.example.com/app"),
            ("MONGODB_URI", "postgres://x"),
            ("JWT_SECRET", "short"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "info,[[["),
            ("MAX_BODY_BYTES", "10"),
            ("SHUTDOWN_GRACE_SECS", "-1"),
            ("WS_SILENCE_SECS", "5"),
            ("ACCOUNT_CACHE_SECS", "86401"),
            ("ACCESS_TOKEN_TTL_SECS", "901"),
            ("ACCESS_TOKEN_TTL_SECS", "0"),
            ("REFRESH_TOKEN_TTL_DAYS", "400"),
            ("REGISTRATIONS_PER_IP_PER_HOUR", "0"),
        ] {
            let err = settings(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
            assert!(err.to_string().contains(var));
        }
        let err = settings(&[("MONGODB_URI", "mongodb://x"), ("MONGODB_DB", "a.b")]).unwrap_err();
        assert_eq!(err.var, "MONGODB_DB");
    }

    #[test]
    fn the_development_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let s = settings(&[("DATA_DIR", data_dir.to_str().unwrap())]).unwrap();
        let first = s.load_jwt_secret().unwrap();
        assert!(first.len() >= MIN_JWT_SECRET_LEN);
        assert_eq!(s.load_jwt_secret().unwrap(), first, "kept across restarts");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data_dir.join(JWT_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = settings(&[
            ("JWT_SECRET", &"s3cret".repeat(10)),
            ("ADMIN_USERNAME", "root"),
            ("ADMIN_PASSWORD", "hunter2-hunter2"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"));
        assert!(!shown.contains("hunter2"));
        assert_eq!(s.admin_bootstrap.unwrap().username, "root");
    }

    #[test]
    fn token_lifetimes_default_to_fifteen_minutes_and_thirty_days() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.access_ttl_secs, 900);
        assert_eq!(s.refresh_ttl_secs, 30 * 86_400);
        let s = settings(&[("ACCESS_TOKEN_TTL_SECS", "5")]).unwrap();
        assert_eq!(s.access_ttl_secs, 5);
        let err = settings(&[("ADMIN_USERNAME", "root")]).unwrap_err();
        assert_eq!(err.var, "ADMIN_PASSWORD");
    }
}
