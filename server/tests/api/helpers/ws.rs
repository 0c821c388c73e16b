//! A websocket client speaking the real wire format: binary frames `[tag][payload]`, tag 0 = JSON item.

use super::Browser;
use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message as WsMessage};

pub type WsSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    pub socket: WsSocket,
    /// Items `recv_until` passed over, handed out again (in order) by the next reads.
    skipped: std::collections::VecDeque<ServerMsg>,
}

/// Encodes one client message as a websocket frame.
pub fn frame(msg: &ClientMsg) -> WsMessage {
    let mut bytes = vec![0u8];
    bytes.extend(serde_json::to_vec(msg).unwrap());
    WsMessage::Binary(bytes.into())
}

/// Decodes one server frame; `None` for frames that carry no item (pings, close).
pub fn decode(message: WsMessage) -> Option<ServerMsg> {
    match message {
        WsMessage::Binary(bytes) => {
            assert_eq!(
                bytes[0],
                0,
                "an item frame, got {:?}",
                String::from_utf8_lossy(&bytes)
            );
            Some(serde_json::from_slice(&bytes[1..]).expect("a ServerMsg"))
        }
        _ => None,
    }
}

/// A `Send` command.
pub fn send(room: app::model::RoomId, nonce: &str, body: &str) -> ClientMsg {
    ClientMsg::Send {
        room,
        nonce: nonce.into(),
        body: body.into(),
        thread: None,
        also_in_room: false,
        files: Vec::new(),
        alts: Vec::new(),
    }
}

/// A `Send` command carrying uploaded files.
pub fn send_with_files(
    room: app::model::RoomId,
    nonce: &str,
    body: &str,
    files: Vec<app::model::FileId>,
) -> ClientMsg {
    send_with_alts(room, nonce, body, files, Vec::new())
}

/// A `Send` command carrying uploaded files with their alt texts.
pub fn send_with_alts(
    room: app::model::RoomId,
    nonce: &str,
    body: &str,
    files: Vec<app::model::FileId>,
    alts: Vec<String>,
) -> ClientMsg {
    ClientMsg::Send {
        room,
        nonce: nonce.into(),
        body: body.into(),
        thread: None,
        also_in_room: false,
        files,
        alts,
    }
}

/// A reply in `root`'s thread, and (`also_in_room`) in the room's timeline too.
pub fn send_reply(
    room: app::model::RoomId,
    root: app::model::MessageId,
    also_in_room: bool,
    nonce: &str,
    body: &str,
) -> ClientMsg {
    ClientMsg::Send {
        room,
        nonce: nonce.into(),
        body: body.into(),
        thread: Some(root),
        also_in_room,
        files: Vec::new(),
        alts: Vec::new(),
    }
}

/// Reads up to the `Synced` of `room`; its last sequence.
pub async fn synced(ws: &mut WsClient, room: app::model::RoomId) -> u64 {
    ws.recv_until(|m| match m {
        ServerMsg::Synced {
            room: r, last_seq, ..
        } if *r == room => Some(*last_seq),
        _ => None,
    })
    .await
}

impl WsClient {
    /// Opens `/api/ws` with the browser's cookies and `Origin`; `Err(status)` when the upgrade is refused.
    pub async fn connect(browser: &Browser) -> Result<Self, u16> {
        let url = format!("{}/api/ws", browser.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert("origin", browser.origin.parse().unwrap());
        if !browser.cookies.is_empty() {
            headers.insert("cookie", browser.cookie_header().parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self {
                socket,
                skipped: Default::default(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    /// Connects, says hello with `cursors`, and reads up to the last `Synced`.
    pub async fn join(browser: &Browser, cursors: Vec<app::protocol::RoomCursor>) -> Self {
        let mut ws = Self::connect(browser).await.expect("upgrade accepted");
        assert!(matches!(ws.recv().await, Some(ServerMsg::Welcome { .. })));
        ws.send(&ClientMsg::Hello {
            cursors,
            batches: false,
        })
        .await;
        ws
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.socket.send(frame(msg)).await.expect("send a frame");
    }

    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        self.socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .expect("send a frame");
    }

    /// The next item within 30 s; `None` once the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerMsg> {
        self.recv_within(std::time::Duration::from_secs(30))
            .await
            .expect("a frame within 30 s")
    }

    /// `Err(())` on timeout.
    pub async fn recv_within(
        &mut self,
        wait: std::time::Duration,
    ) -> Result<Option<ServerMsg>, ()> {
        if let Some(msg) = self.skipped.pop_front() {
            return Ok(Some(msg));
        }
        loop {
            let frame = tokio::time::timeout(wait, self.socket.next())
                .await
                .map_err(|_| ())?;
            match frame {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return Ok(None),
                Some(Ok(message)) => match decode(message) {
                    Some(msg) => return Ok(Some(msg)),
                    None => continue,
                },
            }
        }
    }

    /// Reads until `pick` accepts an item; the others stay queued for later reads.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        if let Some(i) = self.skipped.iter().position(|m| pick(m).is_some()) {
            let msg = self.skipped.remove(i).unwrap();
            return pick(&msg).unwrap();
        }
        let mut passed = Vec::new();
        let found = loop {
            let msg = self
                .recv_within(std::time::Duration::from_secs(30))
                .await
                .expect("a frame within 30 s")
                .expect("the connection is open");
            if let Some(found) = pick(&msg) {
                break found;
            }
            passed.push(msg);
        };
        // Keep the passed-over items in arrival order, ahead of anything read later.
        for msg in passed.into_iter().rev() {
            self.skipped.push_front(msg);
        }
        found
    }

    /// The code of the next error frame (the frames passed over stay queued).
    pub async fn next_error(&mut self) -> ErrorCode {
        self.recv_until(|m| match m {
            ServerMsg::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await
    }

    /// Whether anything matching `pick` arrives within `wait`.
    pub async fn sees_within(
        &mut self,
        wait: std::time::Duration,
        mut pick: impl FnMut(&ServerMsg) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Ok(Some(msg)) if pick(&msg) => return true,
                Ok(Some(_)) => continue,
                Ok(None) | Err(()) => return false,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
