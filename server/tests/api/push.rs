//! Web push end to end: the real server sends to a local push receiver (loopback, allowed in test
//! mode only), which checks what a push service checks (the VAPID token, signed by the key the
//! server publishes, for the receiver's own origin; `aes128gcm`, TTL, Urgency) and decrypts the
//! payload with the subscription's keys, as the browser would.

use crate::helpers::*;
use app::model::RoomId;
use app::protocol::{ClientMsg, Presence, ServerMsg};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

on_both_drivers!(
    a_push_reaches_an_offline_member_decrypted_as_the_levels_allow,
    gone_and_signed_out_subscriptions_get_no_more_pushes,
    subscriptions_must_be_https_to_a_public_address,
);

/// What the receiver got: the device it was for, and the decrypted payload or what was wrong.
#[derive(Debug)]
struct Received {
    device: String,
    payload: Result<serde_json::Value, String>,
    urgency: String,
}

/// One browser's keys: the receiver decrypts with the secret; the server is given the public half.
struct Device {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

#[derive(Clone)]
struct Shared {
    origin: String,
    server_key: String,
    devices: Arc<Mutex<HashMap<String, Device>>>,
    received: mpsc::UnboundedSender<Received>,
}

struct PushReceiver {
    shared: Shared,
    received: mpsc::UnboundedReceiver<Received>,
}

impl PushReceiver {
    async fn start(server_key: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (sender, received) = mpsc::unbounded_channel();
        let shared = Shared {
            origin: format!("http://{}", listener.local_addr().unwrap()),
            server_key,
            devices: Arc::default(),
            received: sender,
        };
        let router = axum::Router::new()
            .route("/push/{device}", axum::routing::post(accept))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { shared, received }
    }

    /// A new device (its keys made here); answers its endpoint and keys as the browser gives them.
    fn device(&self, name: &str, seed: u8) -> (String, String, String) {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let auth = [seed.wrapping_add(1); 16];
        let public = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let keys = (
            URL_SAFE_NO_PAD.encode(public.as_bytes()),
            URL_SAFE_NO_PAD.encode(auth),
        );
        self.shared
            .devices
            .lock()
            .unwrap()
            .insert(name.to_owned(), Device { secret, auth });
        (
            format!("{}/push/{name}", self.shared.origin),
            keys.0,
            keys.1,
        )
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(std::time::Duration::from_secs(60), self.received.recv())
            .await
            .expect("a push within 60 s")
            .expect("the receiver is running")
    }

    /// The next push for `device` (pushes for other devices on the way are kept in `others`).
    async fn next_for(&mut self, device: &str, others: &mut Vec<Received>) -> serde_json::Value {
        self.next_with_urgency(device, others).await.0
    }

    async fn next_with_urgency(
        &mut self,
        device: &str,
        others: &mut Vec<Received>,
    ) -> (serde_json::Value, String) {
        loop {
            let push = self.next().await;
            let payload = push
                .payload
                .clone()
                .unwrap_or_else(|e| panic!("a push the receiver refused: {e}"));
            if push.device == device {
                return (payload, push.urgency);
            }
            others.push(push);
        }
    }
}

/// A push service's check of one push, then the browser's decryption. Devices named `gone-…`
/// answer 410, as a push service does for a subscription the browser dropped.
async fn accept(
    State(shared): State<Shared>,
    Path(device): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let payload = (|| {
        let authorization = header("authorization");
        let (token, key) = authorization
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .ok_or_else(|| format!("not a VAPID authorization: {authorization:?}"))?;
        if key != shared.server_key {
            return Err("signed with a key other than the one the server publishes".to_owned());
        }
        let public = URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[&shared.origin]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &jsonwebtoken::DecodingKey::from_ec_der(&public),
            &validation,
        )
        .map_err(|e| format!("the VAPID token does not verify: {e}"))?;
        if header("content-encoding") != "aes128gcm" {
            return Err(format!("content encoding {:?}", header("content-encoding")));
        }
        if !header("ttl").parse::<u64>().is_ok_and(|ttl| ttl > 0) {
            return Err(format!("TTL {:?}", header("ttl")));
        }
        let devices = shared.devices.lock().unwrap();
        let keys = devices.get(&device).ok_or("a push for an unknown device")?;
        let auth = web_push_native::Auth::clone_from_slice(&keys.auth);
        let plain = web_push_native::decrypt(body.to_vec(), &keys.secret, &auth)
            .map_err(|e| format!("the payload does not decrypt: {e}"))?;
        serde_json::from_slice(&plain).map_err(|e| e.to_string())
    })();
    let refused = payload.is_err();
    let _ = shared.received.send(Received {
        device: device.clone(),
        payload,
        urgency: header("urgency"),
    });
    if refused {
        StatusCode::BAD_REQUEST
    } else if device.starts_with("gone") {
        StatusCode::GONE
    } else {
        StatusCode::CREATED
    }
}

async fn people_with_push<const N: usize>(
    kind: StoreKind,
    names: [&str; N],
) -> (TestApp, [Browser; N], PushReceiver) {
    let app = spawn_app_with(
        kind,
        &[
            ("MESSAGES_PER_10S", "1000".into()),
            ("PUSH_ALLOW_LOOPBACK", "true".into()),
        ],
    )
    .await;
    let mut people = Vec::with_capacity(N);
    for name in names {
        let mut browser = Browser::new(&app);
        browser.register(name, GOOD_PASSWORD).await;
        people.push(browser);
    }
    let mut people: [Browser; N] = people.try_into().unwrap_or_else(|_| unreachable!());
    // The server's public key, as the profile page reads it.
    let key = people[0].get("/api/push/key").await;
    assert_eq!(key.status, 200, "{key:?}");
    let receiver = PushReceiver::start(key.body.as_str().unwrap().to_owned()).await;
    (app, people, receiver)
}

async fn subscribe(browser: &mut Browser, (endpoint, p256dh, auth): &(String, String, String)) {
    let answer = browser
        .post(
            "/api/push/subscribe",
            &[("endpoint", endpoint), ("p256dh", p256dh), ("auth", auth)],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

async fn set_level(browser: &mut Browser, room: RoomId, level: &str) {
    let answer = browser
        .post(
            "/api/rooms/notify",
            &[("room", &room.to_string()), ("level", level)],
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

fn body_of(payload: &serde_json::Value) -> &str {
    payload["body"].as_str().unwrap_or_default()
}

async fn a_push_reaches_an_offline_member_decrypted_as_the_levels_allow(kind: StoreKind) {
    let (app, [mut ana, mut ben, mut carl], mut receiver) =
        people_with_push(kind, ["ana", "ben", "carl"]).await;
    let room = public_room(&mut ana, &mut [&mut ben, &mut carl]).await;
    let quiet = public_room(&mut ana, &mut [&mut ben]).await;
    subscribe(&mut ben, &receiver.device("bens-phone", 7)).await;
    // Carl's phone says when a message's pushes are done (one job after another, in order).
    subscribe(&mut carl, &receiver.device("carls-phone", 8)).await;
    let mut sender = WsClient::join(&ana, vec![]).await;
    let mut others = Vec::new();

    // Ben has nothing open: the message wakes his phone, with the room, the text and the way there.
    sender.send(&send(room, "n1", "lunch at noon?")).await;
    let seq = sender
        .recv_until(|m| match m {
            ServerMsg::Ack { nonce, seq, .. } if nonce == "n1" => Some(*seq),
            _ => None,
        })
        .await;
    let (push, urgency) = receiver.next_with_urgency("bens-phone", &mut others).await;
    assert_eq!(urgency, "normal");
    assert_eq!(push["title"], "#Shared");
    assert_eq!(body_of(&push), "ana: lunch at noon?");
    assert_eq!(push["room"], room.to_string());
    assert_eq!(push["url"], format!("/rooms/{room}?at={seq}"));

    // A muted room sends nothing: the next push Ben gets is the one from the other room after it
    // (one queue, in order).
    set_level(&mut ben, quiet, "nothing").await;
    sender.send(&send(quiet, "n2", "muted news")).await;
    sender.send(&send(room, "n3", "after the muted one")).await;
    assert_eq!(
        body_of(&receiver.next_for("bens-phone", &mut others).await),
        "ana: after the muted one"
    );

    // Mentions only: a message without his name is skipped, the one with it is urgent.
    set_level(&mut ben, room, "mentions").await;
    sender.send(&send(room, "n4", "nothing for ben")).await;
    sender.send(&send(room, "n5", "@ben are you coming?")).await;
    let (mention, urgency) = receiver.next_with_urgency("bens-phone", &mut others).await;
    assert_eq!(body_of(&mention), "ana: @ben are you coming?");
    assert_eq!(urgency, "high");
    set_level(&mut ben, room, "all").await;

    // While Ben has the app open he gets no push; once he has closed it, he does again.
    let mut bens_tab = WsClient::join(&ben, vec![]).await;
    synced(&mut bens_tab, room).await;
    // Ana's client shows Ben: it hears when he goes.
    let ben_id = ben.me().await.body["id"].as_str().unwrap().parse().unwrap();
    sender
        .send(&ClientMsg::Watch {
            room,
            users: vec![ben_id],
        })
        .await;
    sender.send(&send(room, "n6", "ben is looking")).await;
    while body_of(&receiver.next_for("carls-phone", &mut others).await) != "ana: ben is looking" {}
    bens_tab.close().await;
    sender
        .recv_until(|m| (m.presence_of(ben_id) == Some(Presence::Offline)).then_some(()))
        .await;
    sender.send(&send(room, "n7", "ben has gone")).await;
    assert_eq!(
        body_of(&receiver.next_for("bens-phone", &mut others).await),
        "ana: ben has gone"
    );

    // Nothing else reached his phone, and Ana (the author) is never pushed her own messages.
    assert!(
        others.iter().all(|p| p.device == "carls-phone"),
        "{others:?}"
    );
    sender.close().await;
    app.stop().await.unwrap();
}

async fn gone_and_signed_out_subscriptions_get_no_more_pushes(kind: StoreKind) {
    let (app, [mut ana, mut ben, mut carl, mut dora], mut receiver) =
        people_with_push(kind, ["ana", "ben", "carl", "dora"]).await;
    let room = public_room(&mut ana, &mut [&mut ben, &mut carl, &mut dora]).await;
    subscribe(&mut ben, &receiver.device("bens-laptop", 11)).await;
    subscribe(&mut carl, &receiver.device("gone-carls-phone", 12)).await;
    // Dora's phone says when a message's pushes are done: jobs go one after another.
    subscribe(&mut dora, &receiver.device("doras-phone", 13)).await;
    let mut sender = WsClient::join(&ana, vec![]).await;
    let mut attempts = Vec::new();

    sender.send(&send(room, "g1", "first")).await;
    sender.send(&send(room, "g2", "second")).await;
    sender.send(&send(room, "g2b", "done")).await;
    // Jobs run one after another, each until all its pushes are answered: once the third message's
    // push reached Dora and Ben, every push of the first two was made.
    let mut done = std::collections::HashSet::new();
    while done.len() < 2 {
        let push = receiver.next().await;
        if push
            .payload
            .as_ref()
            .is_ok_and(|p| body_of(p) == "ana: done")
        {
            done.insert(push.device.clone());
        }
        attempts.push(push);
    }
    let carl_tries = attempts
        .iter()
        .filter(|p| p.device == "gone-carls-phone")
        .count();
    let ben_pushes = attempts
        .iter()
        .filter(|p| p.device == "bens-laptop")
        .filter(|p| p.payload.as_ref().is_ok_and(|p| body_of(p) != "ana: done"))
        .count();
    assert_eq!(
        carl_tries, 1,
        "the 410 removed Carl's subscription after one push: {attempts:?}"
    );
    assert_eq!(ben_pushes, 2, "{attempts:?}");

    // Ben signs out of the session that subscribed: no more pushes to that device.
    let out = ben.post("/api/auth/logout", &[]).await;
    assert_eq!(out.status, 200, "{out:?}");
    attempts.clear();
    sender.send(&send(room, "g3", "third")).await;
    sender.send(&send(room, "g4", "fourth")).await;
    while body_of(&receiver.next_for("doras-phone", &mut attempts).await) != "ana: fourth" {}
    assert!(
        attempts.iter().all(|p| p.device == "doras-phone"),
        "{attempts:?}"
    );
    sender.close().await;
    app.stop().await.unwrap();
}

async fn subscriptions_must_be_https_to_a_public_address(kind: StoreKind) {
    let (app, [mut ana], receiver) = people_with_push(kind, ["ana"]).await;
    let (_, p256dh, auth) = receiver.device("anas", 21);
    for endpoint in [
        "http://push.example.com/x",
        "https://10.0.0.7/x",
        "https://169.254.169.254/latest",
        "https://localhost.localdomain.internal/x",
        "http://192.168.1.1/x",
    ] {
        let answer = ana
            .post(
                "/api/push/subscribe",
                &[("endpoint", endpoint), ("p256dh", &p256dh), ("auth", &auth)],
            )
            .await;
        assert_eq!(answer.status, 400, "{endpoint}: {answer:?}");
    }
    let bad_key = ana
        .post(
            "/api/push/subscribe",
            &[
                ("endpoint", "https://push.example.com/x"),
                ("p256dh", &auth),
                ("auth", &auth),
            ],
        )
        .await;
    assert_eq!(bad_key.status, 400, "{bad_key:?}");
    let guest = Browser::new(&app)
        .post(
            "/api/push/subscribe",
            &[
                ("endpoint", "https://push.example.com/x"),
                ("p256dh", &p256dh),
                ("auth", &auth),
            ],
        )
        .await;
    assert_eq!(guest.status, 401, "{guest:?}");
    app.stop().await.unwrap();
}
