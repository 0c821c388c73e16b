//! A browser-like client: keeps the cookies it is given (so tests can also replay old ones), and sends
//! our Origin on state-changing requests, as a browser on our pages does.

use super::TestApp;
use std::collections::HashMap;

pub struct Browser {
    pub base: String,
    /// Sent as `Origin` on POSTs; the app's own origin unless a test changes it.
    pub origin: String,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub user_agent: String,
    /// Sent with every request, e.g. `X-Forwarded-For` as a proxy would add it.
    pub extra_headers: Vec<(&'static str, String)>,
}

/// The answer of a server function: status, parsed JSON body, and the raw `Set-Cookie` headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub set_cookies: Vec<String>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self::talking_to(&app.address, &app.address)
    }

    /// A browser sending requests to `base` from pages of `origin`.
    pub(super) fn talking_to(base: &str, origin: &str) -> Self {
        Self {
            base: base.to_owned(),
            origin: origin.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("http client"),
            cookies: HashMap::new(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36".into(),
            extra_headers: Vec::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) -> Vec<String> {
        let mut raw = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap().to_owned();
            let cookie = cookie::Cookie::parse(text.clone()).unwrap();
            if cookie.max_age() == Some(cookie::time::Duration::ZERO) || cookie.value().is_empty() {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
            raw.push(text);
        }
        raw
    }

    fn with_extras(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, value) in &self.extra_headers {
            request = request.header(*name, value);
        }
        request
    }

    /// POSTs a form to a server function, like the app's pages do.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .with_extras(self.http.post(format!("{}{path}", self.base)))
            .header("origin", &self.origin)
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .form(form)
            .send()
            .await
            .expect("request failed");
        self.answer(response).await
    }

    /// POSTs `body` as raw bytes (a file upload), with our Origin.
    pub async fn post_bytes(&mut self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let response = self
            .with_extras(self.http.post(format!("{}{path}", self.base)))
            .header("origin", &self.origin)
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .body(body)
            .send()
            .await
            .expect("request failed");
        self.answer(response).await
    }

    /// A DELETE, with our Origin.
    pub async fn delete(&mut self, path: &str) -> Answer {
        let response = self
            .with_extras(self.http.delete(format!("{}{path}", self.base)))
            .header("origin", &self.origin)
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .send()
            .await
            .expect("request failed");
        self.answer(response).await
    }

    /// A GET with more headers, answered as it comes (status, headers, bytes).
    pub async fn get_raw(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .with_extras(self.http.get(format!("{}{path}", self.base)))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request failed")
    }

    /// GETs a server function or page.
    pub async fn get(&mut self, path: &str) -> Answer {
        let response = self
            .with_extras(self.http.get(format!("{}{path}", self.base)))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .send()
            .await
            .expect("request failed");
        self.answer(response).await
    }

    /// A page load; returns the status, the `Location` (for redirects) and the HTML.
    pub async fn page(&mut self, path: &str) -> (u16, Option<String>, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept", "text/html")
            .send()
            .await
            .expect("request failed");
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    async fn answer(&mut self, response: reqwest::Response) -> Answer {
        let set_cookies = self.keep_cookies(&response);
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Answer {
            status,
            body,
            set_cookies,
        }
    }

    pub async fn register(&mut self, username: &str, password: &str) -> Answer {
        self.post(
            "/api/auth/register",
            &[
                ("username", username),
                ("display_name", ""),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Answer {
        self.post(
            "/api/auth/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    pub async fn me(&mut self) -> Answer {
        self.get("/api/auth/me").await
    }

    pub async fn refresh(&mut self) -> Answer {
        self.post("/api/auth/refresh", &[]).await
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }
}

/// A password the strength check accepts.
pub const GOOD_PASSWORD: &str = "velvet-orbit-cactus-91";

/// `owner` creates a public room and everyone in `others` joins it.
pub async fn public_room(owner: &mut Browser, others: &mut [&mut Browser]) -> app::model::RoomId {
    let room = owner
        .post(
            "/api/rooms/create",
            &[("name", "Shared"), ("topic", ""), ("private", "false")],
        )
        .await;
    assert_eq!(room.status, 200, "{room:?}");
    let id = room.body["id"].as_str().unwrap().to_owned();
    for other in others {
        let joined = other.post("/api/rooms/join", &[("room", &id)]).await;
        assert_eq!(joined.status, 200, "{joined:?}");
    }
    id.parse().unwrap()
}
