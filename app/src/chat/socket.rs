//! The websocket endpoint, `/api/ws`: the upgrade, then the transport for `connection`, which serves
//! the connection in one task: this module decodes the client's frames for it, carries the frames it
//! writes, and says goodbye (`Closing`, then the closing handshake) when the server ends it.
//!
//! The server's upgrade guard has already refused foreign origins (403) and callers without a session
//! (401) before this runs, and hands over who is connecting.

use super::connection::{self, Ended};
use super::socket_limits::SocketPermit;
use crate::auth::sessions::Authenticated;
use crate::protocol::{
    decode_item, encode_item, ClientMsg, CloseReason, FrameError, ServerMsg, MAX_FRAME_BYTES,
};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use futures::stream::SplitStream;
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Bytes read from the socket at a time. Small, because every idle connection keeps this buffer; a
/// bigger frame grows it as needed.
const READ_BUFFER: usize = 1024;
/// Frames are collected up to this many bytes before they are written (a flush writes them anyway).
/// Small: the transport's write buffer keeps the size of the largest burst it ever held for as long
/// as the connection lives, so bursts of idle connections must not make it large.
const WRITE_BUFFER: usize = 4 * 1024;
/// Frames queued in the transport beyond this make the writer wait (the connection's inbox then
/// fills and the hub closes it as too slow).
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// After the server's close frame, how long the client has to answer with its own.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(5);
/// The transport reads frames up to this size, so that one a little over `MAX_FRAME_BYTES` can be
/// answered with a `closing` reason; beyond it only the frame's header is read.
const TRANSPORT_MAX_FRAME: usize = 8 * MAX_FRAME_BYTES;

/// Who may connect, as the server's upgrade guard established: the caller and the place it holds.
#[derive(Clone)]
pub struct Admitted {
    pub me: Authenticated,
    pub permit: Arc<SocketPermit>,
}

/// `GET /api/ws`, behind the server's upgrade guard, which checked the origin, the session and the
/// socket limits and passes the caller on.
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(admitted): Extension<Admitted>,
    ws: WebSocketUpgrade,
) -> Response {
    let hub = state.hub.clone();
    // One box for what the connection starts with: the socket's task holds it (a pointer, not the
    // state and the account inline) while the upgrade completes.
    let start = Box::new((state, admitted));
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(TRANSPORT_MAX_FRAME)
        .max_frame_size(TRANSPORT_MAX_FRAME)
        .on_upgrade(move |socket| hub.track_socket(serve(start, socket)))
}

/// One upgraded connection, from its first frame to its closing handshake.
///
/// Not an `async fn`, and the connection boxed: the future lives as long as the connection, inline in
/// its task, and an async fn would keep its arguments (the state, the account, the socket) in it
/// all that time.
fn serve(start: Box<(AppState, Admitted)>, socket: WebSocket) -> impl Future<Output = ()> + Send {
    let (state, Admitted { me, permit }) = *start;
    let (sink, stream) = socket.split();
    // A closing connection waits this long for the client to take its last frames and the
    // `Closing` notice: as long as a client may stay silent before it counts as gone.
    let linger = state.hub.silence();
    // The input ends when the client closes, or shortly after the server has said goodbye (closing
    // handshake); until then it is read, so the socket is never reset with unread data.
    let (said_goodbye, goodbye_said) = tokio::sync::oneshot::channel::<()>();
    let input = commands(stream).take_until(async move {
        let _ = goodbye_said.await;
        tokio::time::sleep(CLOSE_HANDSHAKE).await;
    });
    let output = sink
        .with(|frame: Bytes| futures::future::ready(Ok::<_, axum::Error>(Message::Binary(frame))));
    let connection = Box::pin(connection::serve(state, me, Box::pin(input), output));
    async move {
        match connection.await {
            Ok(Ended {
                input,
                output: Some(output),
                reason: Some(reason),
                broken: false,
            }) => {
                // The client's last frames are read (and ignored) while it is told goodbye, until it
                // answers the close or the handshake's time is up.
                let said = async {
                    goodbye(output.into_inner(), reason, linger).await;
                    drop(said_goodbye);
                };
                let read_out = async {
                    if let Some(mut input) = input {
                        while input.next().await.is_some() {}
                    }
                };
                Box::pin(futures::future::join(said, read_out)).await;
            }
            Ok(_) => {}
            Err((error, output)) => {
                // The store could not list the user's rooms: the client reconnects with backoff.
                tracing::warn!(%error, "websocket connection could not start");
                let _ = output.into_inner().close().await;
            }
        }
        // The connection's place under the socket limits is held until here.
        drop(permit);
    }
}

/// The client's commands, decoded; an unreadable frame becomes an error the connection answers (a
/// frame over `MAX_FRAME_BYTES` one that closes it). Ends when the client closes the connection or it
/// breaks, or sends a frame over even the transport's limit (only its header is read).
fn commands(stream: SplitStream<WebSocket>) -> impl Stream<Item = Result<ClientMsg, FrameError>> {
    stream
        .take_while(|frame| {
            futures::future::ready(matches!(frame, Ok(m) if !matches!(m, Message::Close(_))))
        })
        .filter_map(|frame| {
            futures::future::ready(match frame {
                Ok(Message::Binary(bytes)) => Some(checked(&bytes)),
                Ok(Message::Text(text)) => Some(checked(text.as_bytes())),
                // Pings are answered by the transport; pongs and close need nothing from us.
                _ => None,
            })
        })
}

fn checked(frame: &[u8]) -> Result<ClientMsg, FrameError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { size: frame.len() });
    }
    decode_item(frame)
}

/// Tells the client why the server ends the connection (`Closing`), then closes it with the code
/// that goes with the reason.
async fn goodbye<S: Sink<Message> + Unpin>(mut sink: S, reason: CloseReason, linger: Duration) {
    let closing = Bytes::from(encode_item(&ServerMsg::Closing { reason }));
    let frame = CloseFrame {
        code: close_code(reason),
        reason: Utf8Bytes::from_static(""),
    };
    let _ = Box::pin(tokio::time::timeout(linger, async {
        let _ = sink.send(Message::Binary(closing)).await;
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    }))
    .await;
}

/// The websocket close code that goes with `reason` (the `closing` frame before it says more).
fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::FrameTooLarge | CloseReason::Flooding => close_code::POLICY,
        CloseReason::ShuttingDown => close_code::AWAY,
        _ => close_code::NORMAL,
    }
}
