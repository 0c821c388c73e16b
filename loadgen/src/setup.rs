//! Users and rooms through the real HTTP API: registration or login (session cookies), token refresh,
//! room creation and joins. Every POST carries `Origin: <public origin>`, as the app's own pages do.

use crate::cli::AuthMode;
use app::model::RoomId;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One HTTP client per loopback source address: the server keys its registration limit and login
/// throttles by client address, and each address has its own ephemeral ports.
#[derive(Clone)]
pub struct Http {
    clients: Vec<reqwest::Client>,
    base: String,
    origin: String,
}

/// A signed-in user: the cookie header to send, and when its access token runs out.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie_header: String,
    pub issued: Instant,
    pub access_ttl: Duration,
}

impl Session {
    /// A session saved by an earlier run (`--sessions`): its age is unknown, so it counts as stale
    /// until refreshed.
    pub fn saved(cookie_header: String) -> Self {
        Self {
            cookie_header,
            issued: Instant::now(),
            access_ttl: Duration::ZERO,
        }
    }

    /// Whether the access token is (nearly) expired: the websocket upgrade would answer 401.
    pub fn stale(&self) -> bool {
        let margin = (self.access_ttl / 4).min(Duration::from_secs(60));
        self.issued.elapsed() + margin > self.access_ttl
    }
}

/// How a session was obtained, with the time the call took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    Registered(Duration),
    LoggedIn(Duration),
    /// Registration said the name was taken, then a login worked: both times.
    Both(Duration, Duration),
}

/// A failed call: a short kind for counting, and a detail for the first few printed.
#[derive(Debug, Clone)]
pub struct CallError {
    pub kind: String,
    pub detail: String,
}

impl CallError {
    fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

struct Answer {
    status: u16,
    body: serde_json::Value,
    cookies: Vec<(String, String)>,
}

impl Http {
    pub fn new(
        base: &str,
        origin: &str,
        sources: &[IpAddr],
        timeout: Duration,
        pool: usize,
    ) -> anyhow::Result<Self> {
        let clients = sources
            .iter()
            .map(|ip| {
                reqwest::Client::builder()
                    .local_address(*ip)
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(timeout)
                    .pool_max_idle_per_host(pool)
                    .tcp_nodelay(true)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            clients,
            base: base.to_owned(),
            origin: origin.to_owned(),
        })
    }

    fn client(&self, n: usize) -> &reqwest::Client {
        &self.clients[n % self.clients.len()]
    }

    async fn call(
        &self,
        via: usize,
        post: bool,
        path: &str,
        cookies: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<Answer, CallError> {
        let url = format!("{}{path}", self.base);
        let mut request = if post {
            self.client(via)
                .post(url)
                .header(ORIGIN, &self.origin)
                .form(form)
        } else {
            self.client(via).get(url).query(form)
        };
        if let Some(cookies) = cookies {
            request = request.header(COOKIE, cookies);
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "io"
            };
            CallError::new(format!("http {kind}"), format!("{path}: {e}"))
        })?;
        let status = response.status().as_u16();
        let cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_set_cookie)
            .collect();
        let text = response
            .text()
            .await
            .map_err(|e| CallError::new("http io", format!("{path}: {e}")))?;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok(Answer {
            status,
            body,
            cookies,
        })
    }

    fn session_from(username: &str, answer: &Answer) -> Result<Session, CallError> {
        let mut cookies: Vec<String> = answer
            .cookies
            .iter()
            .filter(|(name, value)| name.starts_with("mlchat_") && !value.is_empty())
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if cookies.is_empty() {
            return Err(CallError::new(
                "auth: no session cookies",
                format!("{username}: the answer set no mlchat_ cookies"),
            ));
        }
        cookies.sort();
        let ttl = answer.body["access_ttl_secs"].as_u64().unwrap_or(900);
        Ok(Session {
            cookie_header: cookies.join("; "),
            issued: Instant::now(),
            access_ttl: Duration::from_secs(ttl),
        })
    }

    /// `POST /api/auth/register`. `Ok(None)` when the username is taken.
    pub async fn register(
        &self,
        via: usize,
        username: &str,
        password: &str,
    ) -> Result<Option<Session>, CallError> {
        let form = [
            ("username", username),
            ("display_name", ""),
            ("password", password),
        ];
        let answer = self
            .call(via, true, "/api/auth/register", None, &form)
            .await?;
        match answer.status {
            200 => Self::session_from(username, &answer).map(Some),
            400 if answer.body["field"] == "username"
                && answer.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("taken")) =>
            {
                Ok(None)
            }
            status => Err(api_error("register", status, &answer.body)),
        }
    }

    /// `POST /api/auth/login`.
    pub async fn login(
        &self,
        via: usize,
        username: &str,
        password: &str,
    ) -> Result<Session, CallError> {
        let form = [("username", username), ("password", password)];
        let answer = self.call(via, true, "/api/auth/login", None, &form).await?;
        match answer.status {
            200 => Self::session_from(username, &answer),
            status => Err(api_error("login", status, &answer.body)),
        }
    }

    /// A session for `username` as `mode` says; see `--auth`.
    pub async fn sign_in(
        &self,
        via: usize,
        username: &str,
        password: &str,
        mode: AuthMode,
    ) -> Result<(Session, Obtained), CallError> {
        let started = Instant::now();
        match mode {
            AuthMode::Login => {
                let s = self.login(via, username, password).await?;
                Ok((s, Obtained::LoggedIn(started.elapsed())))
            }
            AuthMode::Register | AuthMode::Auto => {
                match self.register(via, username, password).await? {
                    Some(s) => Ok((s, Obtained::Registered(started.elapsed()))),
                    None if mode == AuthMode::Register => Err(CallError::new(
                        "register: username taken",
                        format!("{username} exists (use --auth auto or login, or another --user-prefix)"),
                    )),
                    None => {
                        let register = started.elapsed();
                        let login_started = Instant::now();
                        let s = self.login(via, username, password).await?;
                        Ok((s, Obtained::Both(register, login_started.elapsed())))
                    }
                }
            }
        }
    }

    /// `POST /api/auth/refresh`: new cookies for a session whose access token ran out.
    pub async fn refresh(&self, via: usize, session: &mut Session) -> Result<(), CallError> {
        let answer = self
            .call(
                via,
                true,
                "/api/auth/refresh",
                Some(&session.cookie_header),
                &[],
            )
            .await?;
        if answer.status != 200 {
            return Err(api_error("refresh", answer.status, &answer.body));
        }
        // The refresh rotates both cookies; keep any the answer did not repeat.
        let mut jar: Vec<(String, String)> = session
            .cookie_header
            .split("; ")
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (name, value) in &answer.cookies {
            jar.retain(|(k, _)| k != name);
            if !value.is_empty() {
                jar.push((name.clone(), value.clone()));
            }
        }
        jar.sort();
        session.access_ttl =
            Duration::from_secs(answer.body["access_ttl_secs"].as_u64().unwrap_or(900));
        session.cookie_header = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        session.issued = Instant::now();
        Ok(())
    }

    /// The ids of rooms named `names` that `owner` belongs to (`GET /api/rooms/mine`), creating the
    /// missing ones as public rooms (`POST /api/rooms/create`).
    pub async fn ensure_rooms(
        &self,
        owner: &Session,
        names: &[String],
    ) -> Result<Vec<RoomId>, CallError> {
        let mine = self
            .call(0, false, "/api/rooms/mine", Some(&owner.cookie_header), &[])
            .await?;
        if mine.status != 200 {
            return Err(api_error("rooms/mine", mine.status, &mine.body));
        }
        let existing: Vec<(String, RoomId)> = mine
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["kind"] == "public")
            .filter_map(|r| {
                Some((
                    r["name"].as_str()?.to_owned(),
                    r["id"].as_str()?.parse().ok()?,
                ))
            })
            .collect();
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            if let Some((_, id)) = existing.iter().find(|(n, _)| n == name) {
                ids.push(*id);
                continue;
            }
            let form = [
                ("name", name.as_str()),
                ("topic", "loadgen"),
                ("private", "false"),
            ];
            let made = self
                .call(
                    0,
                    true,
                    "/api/rooms/create",
                    Some(&owner.cookie_header),
                    &form,
                )
                .await?;
            let id = match (made.status, made.body["id"].as_str()) {
                (200, Some(id)) => id.parse().map_err(|_| {
                    CallError::new("rooms/create: bad answer", format!("{:?}", made.body))
                })?,
                (status, _) => return Err(api_error("rooms/create", status, &made.body)),
            };
            ids.push(id);
        }
        Ok(ids)
    }

    /// `POST /api/rooms/join` (idempotent on the server).
    pub async fn join(&self, via: usize, session: &Session, room: RoomId) -> Result<(), CallError> {
        let room = room.to_string();
        let answer = self
            .call(
                via,
                true,
                "/api/rooms/join",
                Some(&session.cookie_header),
                &[("room", &room)],
            )
            .await?;
        match answer.status {
            200 => Ok(()),
            status => Err(api_error("join", status, &answer.body)),
        }
    }
}

/// Sessions saved by `--sessions FILE`: username → cookie header. A missing file is an empty one.
pub fn load_sessions(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a sessions file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Writes the sessions file (through a temporary file, so a crash never leaves half of one). It
/// holds live session cookies: keep it private.
pub fn save_sessions(
    path: &std::path::Path,
    sessions: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600) // session cookies: readable by this user only
            .open(&tmp)?;
        file.write_all(serde_json::to_string_pretty(sessions)?.as_bytes())?;
        file.write_all(b"\n")
    };
    write().map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// `name=value` of a `Set-Cookie` header.
fn parse_set_cookie(header: &str) -> Option<(String, String)> {
    let pair = header.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    Some((name.trim().to_owned(), value.trim().to_owned()))
}

fn api_error(call: &str, status: u16, body: &serde_json::Value) -> CallError {
    let kind = body["kind"].as_str().unwrap_or("unknown");
    let hint = if kind == "cross_site" {
        " (--origin must equal the server's PUBLIC_ORIGIN, by default http://<LEPTOS_SITE_ADDR>)"
    } else {
        ""
    };
    CallError::new(
        format!("{call}: {status} {kind}"),
        format!("{call} answered {status}: {body}{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_files_round_trip_and_saved_sessions_are_stale() {
        let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions.json");
        assert!(load_sessions(&path).unwrap().is_empty());
        let mut sessions = BTreeMap::new();
        sessions.insert(
            "lg-0".to_owned(),
            "mlchat_access=a; mlchat_refresh=r".to_owned(),
        );
        save_sessions(&path, &sessions).unwrap();
        assert_eq!(load_sessions(&path).unwrap(), sessions);
        std::fs::write(&path, "not json").unwrap();
        assert!(load_sessions(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Session::saved("x=y".into()).stale());
    }

    #[test]
    fn set_cookie_headers_give_name_and_value() {
        assert_eq!(
            parse_set_cookie("mlchat_access=abc.def; Path=/; HttpOnly; SameSite=Lax"),
            Some(("mlchat_access".into(), "abc.def".into()))
        );
        assert_eq!(
            parse_set_cookie("mlchat_refresh=; Max-Age=0"),
            Some(("mlchat_refresh".into(), String::new()))
        );
        assert_eq!(parse_set_cookie("garbage"), None);
    }
}
