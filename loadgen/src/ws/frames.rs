//! Websocket frames (RFC 6455, section 5) as a client sees them: the server's frames parsed in place
//! from a reusable read buffer, and the client's own frames written masked.
//!
//! The reader never panics on what the server sends: anything malformed is a `FrameError`, which ends
//! that connection (the caller closes it).

use std::fmt;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Close code of a normal closure.
pub const CLOSE_NORMAL: u16 = 1000;

/// Why the server's bytes are not websocket frames we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// RSV1-3 set: no extension was negotiated.
    ReservedBits,
    UnknownOpcode(u8),
    /// A server must not mask its frames.
    Masked,
    /// A control frame longer than 125 bytes or split into fragments.
    BadControl,
    /// A continuation frame with no message started, or a new message before the last one ended.
    BadFragmentation,
    /// A message (or one frame) over the reader's limit; the length may be a 64-bit value.
    TooLarge(u64),
    /// A close frame with a one-byte payload or a reason that is not UTF-8.
    BadClose,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedBits => f.write_str("reserved bits set"),
            FrameError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            FrameError::Masked => f.write_str("a masked frame from the server"),
            FrameError::BadControl => f.write_str("a fragmented or oversized control frame"),
            FrameError::BadFragmentation => f.write_str("fragments out of order"),
            FrameError::TooLarge(len) => write!(f, "a message of {len} bytes is over the limit"),
            FrameError::BadClose => f.write_str("a malformed close frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// What one frame (or, for fragmented messages, the last fragment) gives the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole data message: in place in the read buffer, or assembled from its fragments.
    Message {
        binary: bool,
        data: &'a [u8],
    },
    /// The caller answers with a pong carrying the same payload.
    Ping(&'a [u8]),
    Pong,
    /// The server is closing: `code` is absent when the payload was empty.
    Close {
        code: Option<u16>,
        reason: &'a [u8],
    },
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    /// Bytes before the payload (2, 4 or 10: server frames carry no mask key).
    len: usize,
    payload: usize,
}

/// The header at the start of `buf`; `Ok(None)` until all of it has arrived.
fn parse_header(buf: &[u8], max_payload: usize) -> Result<Option<Header>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    let control = opcode & 0x8 != 0;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        other => return Err(FrameError::UnknownOpcode(other)),
    }
    // The 7-bit length, or 126 / 127 for a 16- / 64-bit length after it (network byte order).
    let (len, payload) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => (4, u64::from(u16::from_be_bytes([a, b]))),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.try_into().expect("eight bytes");
                (10, u64::from_be_bytes(bytes))
            }
            None => return Ok(None),
        },
        short => (2, u64::from(short)),
    };
    if control && (!fin || payload > 125) {
        return Err(FrameError::BadControl);
    }
    if payload > max_payload as u64 {
        return Err(FrameError::TooLarge(payload));
    }
    Ok(Some(Header {
        fin,
        opcode,
        len,
        payload: payload as usize,
    }))
}

/// The server's side of a connection: bytes read into one buffer that is reused (compacted, grown
/// only when a frame needs it or reads keep filling it), frames parsed where they lie.
pub struct Reader {
    buf: Vec<u8>,
    /// First byte not yet parsed.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// Bytes the frame at `start` needs in all, once its header said so (0: unknown).
    want: usize,
    /// The fragments of a message in progress, and its opcode.
    partial: Vec<u8>,
    partial_op: Option<u8>,
    /// `partial` was handed out whole: cleared before the next frame.
    partial_done: bool,
    max_message: usize,
    max_read: usize,
}

impl Reader {
    /// `initial`: the buffer's first size (what an idle connection keeps); it doubles while reads
    /// fill it, up to `max_read`, and grows further only for a frame bigger than that, up to
    /// `max_message` (the largest message accepted).
    pub fn new(initial: usize, max_read: usize, max_message: usize) -> Self {
        Self {
            buf: vec![0; initial.max(16)],
            start: 0,
            end: 0,
            want: 0,
            partial: Vec::new(),
            partial_op: None,
            partial_done: false,
            max_message,
            max_read: max_read.max(initial),
        }
    }

    /// Where the next read goes: after the bytes already there, with room made first.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let need = self.want.max(1);
        if self.buf.len() - self.start < need || self.buf.len() - self.end < self.buf.len() / 4 {
            // Move what is left of a partly read frame to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        if self.end == self.buf.len() {
            // Never offer an empty slice: a read into it would look like the end of the stream.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Records `n` bytes read into `spare()`. A read that filled all the space offered means more
    /// is waiting: the buffer doubles (up to `max_read`) for fewer, larger reads.
    pub fn filled(&mut self, n: usize) {
        let offered = self.buf.len() - self.end;
        self.end = (self.end + n).min(self.buf.len());
        if n == offered && self.buf.len() < self.max_read {
            let bigger = (self.buf.len() * 2).min(self.max_read);
            self.buf.resize(bigger, 0);
        }
    }

    /// Bytes read and not parsed yet (the HTTP handshake reads its response from here).
    pub fn unparsed(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` unparsed bytes as consumed (by the handshake).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// The next event in the bytes read so far; `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event<'_>>, FrameError> {
        if self.partial_done {
            self.partial_done = false;
            self.partial.clear();
        }
        loop {
            let available = &self.buf[self.start..self.end];
            let Some(header) = parse_header(available, self.max_message)? else {
                self.want = 0;
                return Ok(None);
            };
            let total = header.len + header.payload;
            if available.len() < total {
                self.want = total;
                return Ok(None);
            }
            self.want = 0;
            let payload = self.start + header.len..self.start + total;
            self.start += total;
            match header.opcode {
                OP_PING => return Ok(Some(Event::Ping(&self.buf[payload]))),
                OP_PONG => return Ok(Some(Event::Pong)),
                OP_CLOSE => return close_event(&self.buf[payload]).map(Some),
                OP_TEXT | OP_BINARY if self.partial_op.is_some() => {
                    return Err(FrameError::BadFragmentation)
                }
                OP_TEXT | OP_BINARY if header.fin => {
                    return Ok(Some(Event::Message {
                        binary: header.opcode == OP_BINARY,
                        data: &self.buf[payload],
                    }))
                }
                OP_TEXT | OP_BINARY => {
                    // The first fragment: copied aside, as later frames may not be contiguous with it.
                    self.partial_op = Some(header.opcode);
                    self.partial.extend_from_slice(&self.buf[payload]);
                }
                _ => {
                    // A continuation.
                    let Some(opcode) = self.partial_op else {
                        return Err(FrameError::BadFragmentation);
                    };
                    let size = self.partial.len() + header.payload;
                    if size > self.max_message {
                        return Err(FrameError::TooLarge(size as u64));
                    }
                    self.partial.extend_from_slice(&self.buf[payload]);
                    if header.fin {
                        self.partial_op = None;
                        self.partial_done = true;
                        return Ok(Some(Event::Message {
                            binary: opcode == OP_BINARY,
                            data: &self.partial,
                        }));
                    }
                }
            }
        }
    }

    /// Bytes of memory the buffers hold (for tests of the growth policy).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.len() + self.partial.capacity()
    }
}

fn close_event(payload: &[u8]) -> Result<Event<'_>, FrameError> {
    match payload {
        [] => Ok(Event::Close {
            code: None,
            reason: &[],
        }),
        [_] => Err(FrameError::BadClose),
        [a, b, reason @ ..] => {
            std::str::from_utf8(reason).map_err(|_| FrameError::BadClose)?;
            Ok(Event::Close {
                code: Some(u16::from_be_bytes([*a, *b])),
                reason,
            })
        }
    }
}

/// Appends one client frame (unfragmented) to `out`, its payload masked with `mask` as RFC 6455
/// requires of every client frame.
pub fn write_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte `mask` (masking and unmasking are the same operation).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes(chunk.try_into().expect("four bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask) {
        *b ^= m;
    }
}

/// Appends one unmasked server frame to `out` (the read benchmark's synthetic server, and tests).
pub fn write_unmasked(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
