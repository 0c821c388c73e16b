//! What travels from the hub to a connection: a [`Broadcast`] (one server message, encoded for the
//! wire at most once however many connections receive it), and the [`Control`] through which the hub
//! or the connection itself ends a connection with a reason.

use crate::protocol::{CloseReason, ServerMsg};
use axum::body::Bytes;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Notify;

/// One message on its way to connections: a message in a room of 100 is serialized once, not 100
/// times.
#[derive(Debug)]
pub struct Broadcast {
    msg: ServerMsg,
    frame: OnceLock<Bytes>,
}

impl Broadcast {
    pub fn new(msg: ServerMsg) -> Arc<Self> {
        Arc::new(Self {
            msg,
            frame: OnceLock::new(),
        })
    }

    /// The websocket frame carrying this message (shared, cheap to clone).
    pub fn frame(&self) -> Bytes {
        self.frame
            .get_or_init(|| Bytes::from(crate::protocol::encode_item(&self.msg)))
            .clone()
    }

    pub fn msg(&self) -> &ServerMsg {
        &self.msg
    }
}

impl std::ops::Deref for Broadcast {
    type Target = ServerMsg;
    fn deref(&self) -> &ServerMsg {
        &self.msg
    }
}

impl PartialEq<ServerMsg> for Broadcast {
    fn eq(&self, other: &ServerMsg) -> bool {
        self.msg == *other
    }
}

/// Shared between a connection, its reader and the hub: how to stop it, and whether its person is
/// away.
pub struct Control {
    closing: Mutex<Option<CloseReason>>,
    closed: Notify,
    pub(super) away: AtomicBool,
}

impl Control {
    pub(crate) fn new() -> Self {
        Self {
            closing: Mutex::new(None),
            closed: Notify::new(),
            away: AtomicBool::new(false),
        }
    }

    /// Asks the connection to close; the first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut closing = self.closing.lock().unwrap_or_else(|e| e.into_inner());
        if closing.is_none() {
            *closing = Some(reason);
            self.closed.notify_waiters();
            self.closed.notify_one();
        }
    }

    pub fn reason(&self) -> Option<CloseReason> {
        *self.closing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes once `close` has been called.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.closed.notified();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }
}
