//! The read benchmark's synthetic server (`loadgen read-bench-server`, started by `read-bench` as a
//! child process): it upgrades each connection, sends `welcome` and its room's `synced`, then writes
//! batch frames of `message` items as fast as the sockets take them, one thread pinned to one core.
//!
//! The items are what the real server sends: a `ServerMsg::Message` encoded by serde, packed like
//! `app::chat::socket` packs them (at most `--batch-bytes` per batch frame). Each connection gets
//! every sequence number once, in order, and each body carries its write time, so the reading side
//! runs its real exactly-once and latency bookkeeping. Frames are built once per connection; each
//! write only rewrites the digits of the sequence numbers and times, which are fixed-width.

use super::{bench_room, BASE_SEQ};
use crate::ws::frames::{write_unmasked, OP_BINARY};
use crate::ws::handshake;
use app::model::{MessageId, RoomId, Timestamp, UserId};
use app::protocol::{encode_item, MessageView, ServerMsg, BATCH_TAG};
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Stand-ins in the encoded item for the sequence number (10 digits) and the write time (19).
const SEQ_MARK: &[u8] = b"1111111111";
const TIME_MARK: &[u8] = b"4444444444444444444";

#[derive(Debug, Parser)]
#[command(name = "loadgen read-bench-server", hide = true)]
pub struct ServerArgs {
    #[arg(long)]
    pub rooms: usize,
    #[arg(long)]
    pub batch_bytes: usize,
    #[arg(long)]
    pub frames_per_write: usize,
    /// Core to pin to; -1: none.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu: i64,
    /// Deliveries per second in all, spread evenly over the connections; 0: as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Connections the rate is spread over.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
}

/// Runs the server until its parent closes its stdin (or kills it). Prints `port N` when listening.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = ServerArgs::parse_from(args);
    if args.cpu >= 0 {
        if let Err(e) = crate::proc::pin_to_cpu(args.cpu as usize) {
            eprintln!("read-bench-server: cannot pin to CPU {}: {e}", args.cpu);
            return ExitCode::from(1);
        }
    }
    // The parent holds our stdin open while it needs us: end with it, never outlive it.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("read-bench-server: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("read-bench-server: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let rooms: Vec<Arc<Chunk>> = (0..args.rooms.max(1))
        .map(|r| Chunk::new(bench_room(r), args.batch_bytes, args.frames_per_write).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "port {} item {} items-per-frame {} frame {}",
        listener.local_addr()?.port(),
        rooms[0].item_len,
        rooms[0].items_per_frame,
        rooms[0].frame_len
    )?;
    stdout.flush()?;
    // With a rate, each connection writes one chunk per `every`.
    let every = (args.rate > 0.0).then(|| {
        let per_connection = args.rate / args.connections.max(1) as f64;
        Duration::from_secs_f64(rooms[0].items() as f64 / per_connection)
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let rooms = rooms.clone();
        tokio::spawn(async move {
            // A connection that goes away (the benchmark is over) just ends.
            let _ = connection(stream, &rooms, every).await;
        });
    }
}

/// The frames one write sends, for one room: `frames_per_write` batch frames of `message` items,
/// and where in them the digits to rewrite are.
pub struct Chunk {
    bytes: Vec<u8>,
    /// Per item, the places of its sequence number, then of its time.
    seq_at: Vec<Vec<usize>>,
    time_at: Vec<Vec<usize>>,
    pub item_len: usize,
    pub items_per_frame: usize,
    pub frame_len: usize,
}

impl Chunk {
    pub fn new(room: RoomId, batch_bytes: usize, frames: usize) -> anyhow::Result<Self> {
        let item = encode_item(&ServerMsg::Message {
            message: realistic_view(room),
        });
        let json = &item[1..];
        let seq_in_item = find_all(json, SEQ_MARK);
        let time_in_item = find_all(json, TIME_MARK);
        anyhow::ensure!(
            seq_in_item.len() == 4 && time_in_item.len() == 2,
            "the item template's markers moved: {}",
            String::from_utf8_lossy(json)
        );
        // As the server packs a batch: 1 tag byte, then per item a 4-byte length and its JSON.
        let per_item = 4 + json.len();
        let items_per_frame = ((batch_bytes.saturating_sub(1)) / per_item).max(1);
        let mut payload = vec![BATCH_TAG];
        let mut json_starts = Vec::new();
        for _ in 0..items_per_frame {
            payload.extend_from_slice(&(json.len() as u32).to_be_bytes());
            json_starts.push(payload.len());
            payload.extend_from_slice(json);
        }
        let mut bytes = Vec::new();
        let (mut seq_at, mut time_at) = (Vec::new(), Vec::new());
        for _ in 0..frames.max(1) {
            let frame_start = bytes.len();
            write_unmasked(&mut bytes, true, OP_BINARY, &payload);
            let payload_start = bytes.len() - payload.len();
            debug_assert!(payload_start > frame_start);
            for &start in &json_starts {
                let at = payload_start + start;
                seq_at.push(seq_in_item.iter().map(|i| at + i).collect());
                time_at.push(time_in_item.iter().map(|i| at + i).collect());
            }
        }
        let frame_len = bytes.len() / frames.max(1);
        Ok(Self {
            bytes,
            seq_at,
            time_at,
            item_len: json.len(),
            items_per_frame,
            frame_len,
        })
    }

    /// Rewrites the chunk `buf` (a copy of `bytes`) for the items after `last_seq`, written at
    /// `now_ns`; returns the new last sequence number.
    pub fn fill(&self, buf: &mut [u8], mut last_seq: u64, now_ns: u64) -> u64 {
        let mut time = [0u8; 19];
        put_digits(&mut time, now_ns);
        for (seqs, times) in self.seq_at.iter().zip(&self.time_at) {
            last_seq += 1;
            let mut digits = [0u8; 10];
            put_digits(&mut digits, last_seq);
            for &at in seqs {
                buf[at..at + 10].copy_from_slice(&digits);
            }
            for &at in times {
                buf[at..at + 19].copy_from_slice(&time);
            }
        }
        last_seq
    }

    /// The chunk as built (to be rewritten by `fill`).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Items per chunk.
    pub fn items(&self) -> usize {
        self.seq_at.len()
    }
}

/// `v` as exactly `out.len()` decimal digits (zero-padded; the caller keeps `v` in range).
fn put_digits(out: &mut [u8], mut v: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    memchr::memmem::find_iter(haystack, needle).collect()
}

/// A message as the server sends it to a room of the (a) scenario: ids, names, a loadgen body and
/// its rendered HTML; the optional fields at their defaults. About 420 bytes of JSON.
fn realistic_view(room: RoomId) -> MessageView {
    let body = format!(
        "lg 42 {} {}",
        std::str::from_utf8(SEQ_MARK).expect("ascii"),
        std::str::from_utf8(TIME_MARK).expect("ascii")
    );
    MessageView {
        id: MessageId::from_uuid(uuid::Uuid::from_u128(
            0x0193_8c2e_7a41_7b3c_9d2e_5f60_a2b3_c4d5,
        )),
        room,
        seq: 1_111_111_111,
        rev: 1_111_111_111,
        author: UserId::from_uuid(uuid::Uuid::from_u128(
            0x0193_8c2d_0f12_7e45_8a9b_3c4d_5e6f_7a8b,
        )),
        author_name: "Load Tester 0042".into(),
        author_username: "lg3f9a2c-42".into(),
        author_avatar: None,
        html: format!("<p>{body}</p>"),
        body,
        created_at: Timestamp(1_764_000_000_000),
        edited_at: None,
        deleted: false,
        mentions: Vec::new(),
        reactions: Vec::new(),
        thread: None,
        replies: None,
        files: Vec::new(),
    }
}

/// One connection: the upgrade (its cookie `lg_bench=<connection>` says which room), `welcome`,
/// `synced`, then batch frames until the socket breaks.
async fn connection(
    mut stream: TcpStream,
    rooms: &[Arc<Chunk>],
    every: Option<Duration>,
) -> anyhow::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let (key, cookie) = loop {
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed during the upgrade");
        head.extend_from_slice(&buf[..n]);
        if let Some((_, key, cookie)) =
            handshake::parse_request(&head).map_err(anyhow::Error::msg)?
        {
            break (key, cookie);
        }
    };
    let conn: usize = cookie
        .split(';')
        .find_map(|c| c.trim().strip_prefix("lg_bench="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no lg_bench cookie"))?;
    let room_idx = conn % rooms.len();
    let mut hello = handshake::switching(&key);
    for msg in [
        ServerMsg::Welcome {
            user: UserId::from_uuid(uuid::Uuid::from_u128(conn as u128 + 1)),
            heartbeat_secs: app::protocol::HEARTBEAT_SECS,
        },
        ServerMsg::Synced {
            room: bench_room(room_idx),
            last_seq: BASE_SEQ,
            rev: 0,
        },
    ] {
        write_unmasked(&mut hello, true, OP_BINARY, &encode_item(&msg));
    }
    stream.write_all(&hello).await?;
    // The client's frames (hello, pings, close) are never read: only the writing is measured.
    let chunk = &rooms[room_idx];
    let mut buf = chunk.bytes.clone();
    let mut last_seq = BASE_SEQ;
    // Paced connections start at different points of their period, so writes spread out.
    let mut ticks = every.map(|every| {
        let phase = every.mul_f64((conn % 997) as f64 / 997.0);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, every);
        // A server that falls behind writes less, visibly, rather than in bursts.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        match &mut ticks {
            Some(ticks) => {
                ticks.tick().await;
            }
            // One write per turn: tokio's budget counts polls, not bytes, and the other
            // connections (and new ones waiting for their upgrade) must not wait behind megabytes.
            None => tokio::task::yield_now().await,
        }
        last_seq = chunk.fill(&mut buf, last_seq, crate::wire::unix_nanos());
        stream.write_all(&buf).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_item, parse_body, Item};
    use crate::ws::frames::{Event, Reader};

    #[test]
    fn chunks_are_real_batch_frames_with_fresh_numbers() {
        let room = bench_room(3);
        let chunk = Chunk::new(room, 4096, 3).unwrap();
        assert!((300..=430).contains(&chunk.item_len), "{}", chunk.item_len);
        assert!(chunk.frame_len <= 4096 + 4, "batch frames of at most 4 KiB");
        assert_eq!(chunk.items(), 3 * chunk.items_per_frame);
        let mut buf = chunk.bytes.clone();
        let last = chunk.fill(&mut buf, BASE_SEQ, 1_764_000_000_123_456_789);
        assert_eq!(last, BASE_SEQ + chunk.items() as u64);

        let mut reader = Reader::new(1 << 16, 1 << 16, 1 << 20);
        let spare = reader.spare();
        spare[..buf.len()].copy_from_slice(&buf);
        reader.filled(buf.len());
        let mut seqs = Vec::new();
        while let Some(event) = reader.next_event().unwrap() {
            let Event::Message { binary: true, data } = event else {
                panic!("binary messages only")
            };
            for json in app::protocol::items(data).unwrap() {
                // The real server's type decodes it, and so does the scanner.
                let full: ServerMsg = serde_json::from_slice(json).unwrap();
                let ServerMsg::Message { message } = full else {
                    panic!("a message")
                };
                assert_eq!((message.room, message.rev), (room, message.seq));
                assert_eq!(message.html, format!("<p>{}</p>", message.body));
                let (item, slow) = decode_item(json).unwrap();
                assert!(!slow);
                let Item::Message { seq, body, .. } = item else {
                    panic!("a message")
                };
                assert_eq!(seq, message.seq);
                assert_eq!(
                    parse_body(&body),
                    Some((42, seq, 1_764_000_000_123_456_789))
                );
                seqs.push(seq);
            }
        }
        let want: Vec<u64> = (BASE_SEQ + 1..=last).collect();
        assert_eq!(seqs, want);
    }
}
