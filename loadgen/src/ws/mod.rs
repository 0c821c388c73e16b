//! A lean websocket client over one `TcpStream`, made for reading a lot: the upgrade written and
//! checked here, then the server's frames parsed in place from one reusable buffer (`frames`), with
//! no allocation or copy per frame. Pings are answered and a close is echoed on their own; the
//! client's frames are masked as RFC 6455 requires.

pub mod frames;
pub mod handshake;

use frames::{write_masked, Reader, CLOSE_NORMAL, OP_BINARY, OP_CLOSE, OP_PONG};
pub use frames::{Event, FrameError};
use std::fmt;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// First size of a connection's read buffer: what an idle connection keeps.
const READ_INITIAL: usize = 4 * 1024;
/// Reads that keep filling the buffer grow it up to this (fewer, larger reads for busy connections).
const READ_MAX: usize = 64 * 1024;
/// Largest message accepted (the server's frames are at most a few KiB; a big single item is
/// allowed for).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// A write buffer that grew past this (a big `watch`) is given back after its flush.
const OUT_KEEP: usize = 16 * 1024;

/// Why the upgrade failed.
#[derive(Debug)]
pub enum UpgradeError {
    Io(io::Error),
    /// A header value that cannot be sent (`origin`, `cookie`, `url`).
    BadHeader(&'static str),
    /// The server answered something else than `101`, with this body (or its start).
    Refused {
        status: u16,
        body: String,
    },
    /// The answer is not a valid upgrade, or the server closed before answering.
    Protocol(String),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::Io(e) => write!(f, "{e}"),
            UpgradeError::BadHeader(h) => write!(f, "a {h} that cannot be sent"),
            UpgradeError::Refused { status, body } => {
                write!(f, "upgrade answered {status}: {body}")
            }
            UpgradeError::Protocol(e) => f.write_str(e),
        }
    }
}

impl From<io::Error> for UpgradeError {
    fn from(e: io::Error) -> Self {
        UpgradeError::Io(e)
    }
}

/// A fresh mask for one client frame. Masks exist so that a browser script cannot make a proxy's
/// cache see chosen bytes; `rand`'s thread-local generator is plenty for that and cheap.
fn mask() -> [u8; 4] {
    rand::random::<u32>().to_ne_bytes()
}

/// An open websocket: the socket, what was read and not yet parsed, what is to be written.
pub struct WsClient {
    stream: TcpStream,
    reader: Reader,
    out: Vec<u8>,
    close_sent: bool,
}

impl WsClient {
    /// Upgrades `stream` (already connected) at `path` on `host` (`host:port`).
    pub async fn upgrade(
        mut stream: TcpStream,
        host: &str,
        path: &str,
        origin: &str,
        cookies: &str,
    ) -> Result<Self, UpgradeError> {
        let key = handshake::new_key();
        let request = handshake::request(host, path, origin, cookies, &key)
            .map_err(|handshake::BadHeader(h)| UpgradeError::BadHeader(h))?;
        stream.write_all(&request).await?;
        let mut reader = Reader::new(READ_INITIAL, READ_MAX, MAX_MESSAGE);
        loop {
            match handshake::parse_answer(reader.unparsed(), &key)
                .map_err(UpgradeError::Protocol)?
            {
                Some(handshake::Answer::Upgraded { head }) => {
                    // Frames the server sent right after its answer stay in the buffer.
                    reader.consume(head);
                    return Ok(Self {
                        stream,
                        reader,
                        out: Vec::new(),
                        close_sent: false,
                    });
                }
                Some(handshake::Answer::Refused { status, head, body }) => {
                    // Read the body (its start at most) for the report.
                    let want = head + body.unwrap_or(0).min(4096);
                    while reader.unparsed().len() < want {
                        let n = stream.read(reader.spare()).await?;
                        if n == 0 {
                            break;
                        }
                        reader.filled(n);
                    }
                    let all = reader.unparsed();
                    let body = &all[head.min(all.len())..want.min(all.len())];
                    return Err(UpgradeError::Refused {
                        status,
                        body: String::from_utf8_lossy(body).into_owned(),
                    });
                }
                None => {
                    let n = stream.read(reader.spare()).await?;
                    if n == 0 {
                        return Err(UpgradeError::Protocol(
                            "the server closed during the upgrade".into(),
                        ));
                    }
                    reader.filled(n);
                }
            }
        }
    }

    /// Waits until the socket may have bytes to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable().await
    }

    /// Reads what the socket holds without waiting (`WouldBlock` when nothing); `Ok(0)` is the end
    /// of the stream.
    pub fn try_read(&mut self) -> io::Result<usize> {
        let n = self.stream.try_read(self.reader.spare())?;
        self.reader.filled(n);
        Ok(n)
    }

    /// Reads, waiting for bytes; `Ok(0)` is the end of the stream.
    pub async fn read(&mut self) -> io::Result<usize> {
        let n = self.stream.read(self.reader.spare()).await?;
        self.reader.filled(n);
        Ok(n)
    }

    /// The next event in what was read. A ping queues its pong, a close queues the answering close
    /// (send them with `flush`).
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, FrameError> {
        let event = self.reader.next_event()?;
        match &event {
            Some(Event::Ping(payload)) if !self.close_sent => {
                write_masked(&mut self.out, OP_PONG, payload, mask());
            }
            Some(Event::Close { code, .. }) if !self.close_sent => {
                self.close_sent = true;
                let code = code.unwrap_or(CLOSE_NORMAL).to_be_bytes();
                write_masked(&mut self.out, OP_CLOSE, &code, mask());
            }
            _ => {}
        }
        Ok(event)
    }

    /// Queues one binary message.
    pub fn send_binary(&mut self, payload: &[u8]) {
        write_masked(&mut self.out, OP_BINARY, payload, mask());
    }

    /// Queues a normal close, once.
    pub fn send_close(&mut self) {
        if !self.close_sent {
            self.close_sent = true;
            write_masked(&mut self.out, OP_CLOSE, &CLOSE_NORMAL.to_be_bytes(), mask());
        }
    }

    /// Writes every queued frame.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.out).await;
        self.out.clear();
        if self.out.capacity() > OUT_KEEP {
            self.out.shrink_to(1024);
        }
        result
    }
}
