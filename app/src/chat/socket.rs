//! The websocket endpoint, `/api/ws`: the upgrade, then two halves per connection. The reader decodes
//! client frames for `connection`; the writer sends the frames `connection` queued, as many as are
//! waiting per flush (one write syscall for a burst instead of one per frame), packed into batch
//! frames for clients that read them (one websocket frame for a burst).
//!
//! The server's upgrade guard has already refused foreign origins (403) and callers without a session
//! (401) before this runs, and hands over who is connecting.

use super::connection::{self, Outgoing};
use super::hub::{Broadcast, Control};
use super::socket_limits::SocketPermit;
use crate::auth::sessions::Authenticated;
use crate::protocol::{
    batch_len, decode_item, encode_batch, encode_item, ClientMsg, CloseReason, FrameError,
    ServerMsg, MAX_FRAME_BYTES,
};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use futures::stream::SplitStream;
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;

/// Bytes read from the socket at a time. Small, because every idle connection keeps this buffer; a
/// bigger frame grows it as needed.
const READ_BUFFER: usize = 1024;
/// Frames are collected up to this many bytes before they are written (a flush writes them anyway).
/// Small, like `BATCH_BYTES`: the transport's write buffer keeps the size of the largest burst it
/// ever held for as long as the connection lives, so bursts of idle connections (a connect storm's
/// presence) must not make it large.
const WRITE_BUFFER: usize = 4 * 1024;
/// A batch frame packs items up to this many bytes (an item bigger than this goes alone): bounded
/// for the same reason as `WRITE_BUFFER`.
const BATCH_BYTES: usize = 4 * 1024;
/// Frames queued in the transport beyond this make the writer wait (the connection's own queue then
/// fills and the hub closes it as too slow).
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// After the server's close frame, how long the client has to answer with its own.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(5);
/// The transport reads frames up to this size, so that one a little over `MAX_FRAME_BYTES` can be
/// answered with a `closing` reason; beyond it only the frame's header is read.
const TRANSPORT_MAX_FRAME: usize = 8 * MAX_FRAME_BYTES;
/// Frames written per flush at most.
const FLUSH_BURST: usize = 512;

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
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(TRANSPORT_MAX_FRAME)
        .max_frame_size(TRANSPORT_MAX_FRAME)
        .on_upgrade(move |socket| {
            hub.track_socket(async move {
                let Admitted { me, permit } = admitted;
                serve(state, me, socket).await;
                drop(permit);
            })
        })
}

/// One upgraded connection, from its first frame to its closing handshake.
async fn serve(state: AppState, me: Authenticated, socket: WebSocket) {
    let (sink, stream) = socket.split();
    // A closing connection waits this long for the client to take its last frames and the
    // `Closing` notice: as long as a client may stay silent before it counts as gone.
    let linger = state.hub.silence();
    // The input ends when the client closes, or shortly after the writer has said goodbye
    // (closing handshake); until then it is read, so the socket is never reset with unread data.
    let (written, writer_done) = tokio::sync::oneshot::channel::<()>();
    let input = commands(stream).take_until(async move {
        let _ = writer_done.await;
        tokio::time::sleep(CLOSE_HANDSHAKE).await;
    });
    // Boxed, like the closing in `write_frames`: run once, their state need not stay in every
    // socket's task for as long as it lives.
    match Box::pin(connection::open(state, me, Box::pin(input))).await {
        Ok(Outgoing { frames, control }) => {
            write_frames(sink, frames, control, linger).await;
            drop(written);
        }
        Err(error) => {
            // The store could not list the user's rooms: the client reconnects with backoff.
            tracing::warn!(%error, "websocket connection could not start");
            let mut sink = sink;
            let _ = sink.close().await;
        }
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

/// Writes queued frames until the connection ends, then says why (`Closing`) if the server ended it.
async fn write_frames<S: Sink<Message> + Unpin>(
    mut sink: S,
    mut frames: tokio::sync::mpsc::Receiver<Arc<Broadcast>>,
    control: Arc<Control>,
    linger: Duration,
) {
    let mut batch = Vec::with_capacity(16);
    loop {
        let received = tokio::select! {
            biased;
            _ = control.closed() => 0,
            received = frames.recv_many(&mut batch, FLUSH_BURST) => received,
        };
        if received == 0 {
            break;
        }
        // Under load the tasks about to queue more frames for this client are already runnable: let
        // them run first, so one flush carries their frames too (costs one scheduler pass when idle).
        tokio::task::yield_now().await;
        while batch.len() < FLUSH_BURST {
            match frames.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        // A client that stops reading leaves the write pending; a close request must still end it.
        let written = {
            let write = write_batch(&mut sink, &mut batch, control.batches());
            tokio::pin!(write);
            tokio::select! {
                written = &mut write => written,
                _ = control.closed() => matches!(tokio::time::timeout(linger, &mut write).await, Ok(true)),
            }
        };
        if !written {
            // The socket broke, or the client stopped reading while closing: nothing more gets through.
            return;
        }
    }
    if let Some(reason) = control.reason() {
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
}

/// The websocket close code that goes with `reason` (the `closing` frame before it says more).
fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::FrameTooLarge | CloseReason::Flooding => close_code::POLICY,
        CloseReason::ShuttingDown => close_code::AWAY,
        _ => close_code::NORMAL,
    }
}

/// Queues every frame in `batch` in the transport (packed into batch frames when the client reads
/// them), then flushes once. `false` if the socket broke.
async fn write_batch<S: Sink<Message> + Unpin>(
    sink: &mut S,
    batch: &mut Vec<Arc<Broadcast>>,
    batches: bool,
) -> bool {
    let several = batch.len() > 1;
    let frames = batch.drain(..).map(|event| event.frame());
    let frames = if batches && several {
        pack(frames)
    } else {
        frames.collect()
    };
    for frame in frames {
        if sink.feed(Message::Binary(frame)).await.is_err() {
            return false;
        }
    }
    sink.flush().await.is_ok()
}

/// Item frames packed, in order, into as few frames of at most `BATCH_BYTES` as they fit in (an item
/// bigger than that is a frame of its own); an item left alone stays an item frame.
fn pack(frames: impl Iterator<Item = Bytes>) -> Vec<Bytes> {
    let mut packed = Vec::new();
    let mut group: Vec<Bytes> = Vec::new();
    let mut group_bytes = 0;
    for frame in frames {
        if !group.is_empty() && batch_len(group.len() + 1, group_bytes + frame.len()) > BATCH_BYTES
        {
            packed.push(seal(std::mem::take(&mut group)));
            group_bytes = 0;
        }
        group_bytes += frame.len();
        group.push(frame);
    }
    if !group.is_empty() {
        packed.push(seal(group));
    }
    packed
}

fn seal(mut group: Vec<Bytes>) -> Bytes {
    if group.len() == 1 {
        group.pop().expect("one frame")
    } else {
        Bytes::from(encode_batch(&group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::hub::Control;
    use crate::protocol::{decode_json, items, BATCH_TAG, ITEM_TAG};

    fn pong() -> Arc<Broadcast> {
        Broadcast::new(ServerMsg::Pong)
    }

    /// What the writer sends for `queued` (all waiting before it starts), as (tag, items) per frame.
    async fn written(queued: Vec<Arc<Broadcast>>, batches: bool) -> Vec<(u8, Vec<ServerMsg>)> {
        let (tx, rx) = tokio::sync::mpsc::channel(queued.len().max(1));
        for event in queued {
            tx.try_send(event).unwrap();
        }
        drop(tx);
        let control = Arc::new(Control::new());
        if batches {
            control.allow_batches();
        }
        let (sink, sent) = futures::channel::mpsc::unbounded::<Message>();
        write_frames(sink, rx, control, Duration::from_secs(1)).await;
        sent.map(|message| match message {
            Message::Binary(frame) => (
                frame[0],
                items(&frame)
                    .unwrap()
                    .map(|json| decode_json(json).unwrap())
                    .collect(),
            ),
            other => panic!("a binary frame, got {other:?}"),
        })
        .collect()
        .await
    }

    #[tokio::test]
    async fn a_burst_is_one_batch_frame_only_for_a_client_that_reads_them() {
        let burst = || (0..5).map(|_| pong()).collect::<Vec<_>>();
        let pongs = || vec![ServerMsg::Pong; 5];
        assert_eq!(written(burst(), true).await, vec![(BATCH_TAG, pongs())]);
        let one_each = written(burst(), false).await;
        assert_eq!(one_each, vec![(ITEM_TAG, vec![ServerMsg::Pong]); 5]);
        // A lone frame stays an item frame either way.
        assert_eq!(
            written(vec![pong()], true).await,
            vec![(ITEM_TAG, vec![ServerMsg::Pong])]
        );
    }

    #[test]
    fn packing_keeps_the_order_and_every_frame_within_the_limit() {
        // Frames of a third of the limit: two fit in a batch, three do not.
        let frames: Vec<Bytes> = (0..7u8)
            .map(|i| {
                let mut frame = vec![ITEM_TAG];
                frame.extend(std::iter::repeat_n(b'0' + i, BATCH_BYTES / 3));
                Bytes::from(frame)
            })
            .collect();
        let packed = pack(frames.clone().into_iter());
        assert_eq!(packed.len(), 4);
        assert!(packed.iter().all(|f| f.len() <= BATCH_BYTES));
        assert_eq!(
            packed[3], frames[6],
            "the last one alone stays an item frame"
        );
        let unpacked: Vec<&[u8]> = packed.iter().flat_map(|f| items(f).unwrap()).collect();
        let expected: Vec<&[u8]> = frames.iter().map(|f| &f[1..]).collect();
        assert_eq!(unpacked, expected);
    }

    #[test]
    fn an_item_bigger_than_a_batch_goes_alone_between_its_neighbours_batches() {
        let item = |len: usize| {
            let mut frame = vec![ITEM_TAG];
            frame.extend(std::iter::repeat_n(b'x', len));
            Bytes::from(frame)
        };
        let frames = vec![
            item(10),
            item(10),
            item(2 * BATCH_BYTES),
            item(10),
            item(10),
        ];
        let packed = pack(frames.clone().into_iter());
        let tags: Vec<u8> = packed.iter().map(|f| f[0]).collect();
        assert_eq!(tags, [BATCH_TAG, ITEM_TAG, BATCH_TAG]);
        assert_eq!(packed[1], frames[2]);
    }
}
