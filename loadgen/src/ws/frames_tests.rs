use super::*;

const MAX: usize = 1 << 20;

fn reader() -> Reader {
    Reader::new(64, 1024, MAX)
}

/// Feeds `bytes` to `reader` in reads of at most `step` bytes, collecting every event as an owned
/// value, until the bytes are used up or an error.
fn feed(reader: &mut Reader, bytes: &[u8], step: usize) -> Result<Vec<Owned>, FrameError> {
    let mut events = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let spare = reader.spare();
        assert!(!spare.is_empty(), "spare space is never empty");
        let n = spare.len().min(step).min(rest.len());
        spare[..n].copy_from_slice(&rest[..n]);
        reader.filled(n);
        rest = &rest[n..];
        while let Some(event) = reader.next_event()? {
            events.push(Owned::from(event));
        }
    }
    Ok(events)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Message(bool, Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>, Vec<u8>),
}

impl From<Event<'_>> for Owned {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Message { binary, data } => Owned::Message(binary, data.to_vec()),
            Event::Ping(p) => Owned::Ping(p.to_vec()),
            Event::Pong => Owned::Pong,
            Event::Close { code, reason } => Owned::Close(code, reason.to_vec()),
        }
    }
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_unmasked(&mut out, fin, opcode, payload);
    out
}

fn binary(payload: &[u8]) -> Vec<u8> {
    frame(true, OP_BINARY, payload)
}

/// Payload bytes that are not all alike, so a misplaced slice shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn lengths_of_7_16_and_64_bits_are_read() {
    for len in [0, 1, 125, 126, 127, 1000, 65_535, 65_536, 200_000] {
        let payload = pattern(len);
        let bytes = binary(&payload);
        let header = match len {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        assert_eq!(bytes.len(), header + len, "header size for {len}");
        let events = feed(&mut reader(), &bytes, usize::MAX).unwrap();
        assert_eq!(events, [Owned::Message(true, payload)], "length {len}");
    }
}

#[test]
fn frames_split_at_every_byte_are_read_whole() {
    let mut stream = Vec::new();
    let payloads = [pattern(3), pattern(300), pattern(70_000), pattern(0)];
    for p in &payloads {
        stream.extend(binary(p));
    }
    let expected: Vec<Owned> = payloads
        .iter()
        .map(|p| Owned::Message(true, p.clone()))
        .collect();
    for step in [1, 2, 3, 5, 9, 10, 11, 64, 127, 4096, usize::MAX] {
        let events = feed(&mut reader(), &stream, step).unwrap();
        assert_eq!(events, expected, "reads of {step} bytes");
    }
    // A split at every position of the first two frames.
    let small: Vec<u8> = [binary(b"hello"), binary(&pattern(200))].concat();
    for cut in 0..small.len() {
        let mut r = reader();
        let mut events = feed(&mut r, &small[..cut], usize::MAX).unwrap();
        events.extend(feed(&mut r, &small[cut..], usize::MAX).unwrap());
        assert_eq!(
            events,
            [
                Owned::Message(true, b"hello".to_vec()),
                Owned::Message(true, pattern(200))
            ],
            "cut at {cut}"
        );
    }
}

#[test]
fn many_frames_in_one_read_come_out_in_order() {
    let stream: Vec<u8> = (0..50).flat_map(|i| binary(&pattern(i * 13))).collect();
    let events = feed(&mut Reader::new(1 << 16, 1 << 16, MAX), &stream, usize::MAX).unwrap();
    assert_eq!(events.len(), 50);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(*e, Owned::Message(true, pattern(i * 13)));
    }
}

#[test]
fn control_frames_come_out_even_between_fragments() {
    let stream = [
        frame(false, OP_BINARY, b"one "),
        frame(true, OP_PING, b"are you there"),
        frame(false, OP_CONTINUATION, b"two "),
        frame(true, OP_PONG, b""),
        frame(true, OP_CONTINUATION, b"three"),
        frame(false, OP_TEXT, b"a"),
        frame(true, OP_CONTINUATION, b"b"),
        binary(b"after"),
        frame(true, OP_CLOSE, &[0x03, 0xE8, b'b', b'y', b'e']),
        frame(true, OP_CLOSE, b""),
    ]
    .concat();
    for step in [1, 7, usize::MAX] {
        let events = feed(&mut reader(), &stream, step).unwrap();
        assert_eq!(
            events,
            [
                Owned::Ping(b"are you there".to_vec()),
                Owned::Pong,
                Owned::Message(true, b"one two three".to_vec()),
                Owned::Message(false, b"ab".to_vec()),
                Owned::Message(true, b"after".to_vec()),
                Owned::Close(Some(1000), b"bye".to_vec()),
                Owned::Close(None, Vec::new()),
            ],
            "reads of {step}"
        );
    }
}

#[test]
fn malformed_frames_are_errors() {
    let masked = {
        let mut f = Vec::new();
        write_masked(&mut f, OP_BINARY, b"x", [1, 2, 3, 4]);
        f
    };
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![0x80 | 0x40 | OP_BINARY, 0], FrameError::ReservedBits),
        (vec![0x83, 0], FrameError::UnknownOpcode(3)),
        (vec![0x8B, 0], FrameError::UnknownOpcode(0xB)),
        (masked, FrameError::Masked),
        (frame(false, OP_PING, b""), FrameError::BadControl),
        (frame(true, OP_PING, &[0; 126]), FrameError::BadControl),
        (
            frame(true, OP_CONTINUATION, b"x"),
            FrameError::BadFragmentation,
        ),
        (
            [frame(false, OP_BINARY, b"a"), binary(b"b")].concat(),
            FrameError::BadFragmentation,
        ),
        (frame(true, OP_CLOSE, &[3]), FrameError::BadClose),
        (
            frame(true, OP_CLOSE, &[3, 0xE8, 0xFF]),
            FrameError::BadClose,
        ),
        (
            [vec![0x82, 127], u64::MAX.to_be_bytes().to_vec()].concat(),
            FrameError::TooLarge(u64::MAX),
        ),
        (
            [vec![0x82, 127], (MAX as u64 + 1).to_be_bytes().to_vec()].concat(),
            FrameError::TooLarge(MAX as u64 + 1),
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            feed(&mut reader(), &bytes, usize::MAX),
            Err(error.clone()),
            "{bytes:x?}"
        );
    }
    // Fragments that add up to more than the limit.
    let mut r = Reader::new(64, 1024, 100);
    let parts = [
        frame(false, OP_BINARY, &[0; 60]),
        frame(true, OP_CONTINUATION, &[0; 60]),
    ]
    .concat();
    assert_eq!(
        feed(&mut r, &parts, usize::MAX),
        Err(FrameError::TooLarge(120))
    );
}

#[test]
fn garbage_never_panics() {
    // A small xorshift: the same bytes on every run.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid: Vec<u8> = [
        binary(&pattern(300)),
        frame(false, OP_BINARY, b"ab"),
        frame(true, OP_PING, b"p"),
        frame(true, OP_CONTINUATION, b"cd"),
        frame(true, OP_CLOSE, &[3, 0xE8]),
    ]
    .concat();
    for round in 0..3000 {
        let mut bytes = if round % 2 == 0 {
            valid.clone()
        } else {
            (0..(next() % 400) as usize).map(|_| next() as u8).collect()
        };
        for _ in 0..(next() % 4) {
            if !bytes.is_empty() {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
        }
        let step = 1 + (next() % 64) as usize;
        let mut r = Reader::new(16, 256, 4096);
        let _ = feed(&mut r, &bytes, step);
        assert!(
            r.capacity() <= 4 * 4096,
            "memory stays bounded by the limit"
        );
    }
}

#[test]
fn the_buffer_grows_for_busy_connections_and_big_frames_only() {
    let mut r = Reader::new(64, 1024, MAX);
    // Small frames read one at a time keep the first size.
    for _ in 0..100 {
        assert_eq!(feed(&mut r, &binary(b"tiny"), usize::MAX).unwrap().len(), 1);
    }
    assert_eq!(r.capacity(), 64);
    // Reads that fill the buffer double it, up to the read size.
    let burst: Vec<u8> = (0..100).flat_map(|_| binary(&[7; 20])).collect();
    assert_eq!(feed(&mut r, &burst, usize::MAX).unwrap().len(), 100);
    assert_eq!(r.capacity(), 1024);
    // A frame bigger than that grows it to the frame's size.
    assert_eq!(
        feed(&mut r, &binary(&pattern(5000)), usize::MAX).unwrap(),
        [Owned::Message(true, pattern(5000))]
    );
    assert!(r.capacity() >= 5004);
}

#[test]
fn the_handshake_leftover_is_parsed_as_frames() {
    let mut r = reader();
    let response = b"HTTP/1.1 101 Switching Protocols\r\n\r\n";
    let bytes = [response.to_vec(), binary(b"welcome")].concat();
    let spare = r.spare();
    spare[..bytes.len()].copy_from_slice(&bytes);
    r.filled(bytes.len());
    assert!(r.unparsed().starts_with(b"HTTP/1.1 101"));
    r.consume(response.len());
    assert_eq!(
        r.next_event().unwrap().map(Owned::from),
        Some(Owned::Message(true, b"welcome".to_vec()))
    );
    assert_eq!(r.next_event(), Ok(None));
}

#[test]
fn client_frames_are_masked_with_the_right_length_form() {
    let mask = [0xA1, 0x02, 0xF3, 0x44];
    for len in [0, 5, 125, 126, 65_535, 65_536] {
        let payload = pattern(len);
        let mut out = Vec::new();
        write_masked(&mut out, OP_BINARY, &payload, mask);
        assert_eq!(out[0], 0x80 | OP_BINARY, "FIN and opcode");
        assert_eq!(out[1] & 0x80, 0x80, "the mask bit");
        let (len_bytes, declared) = match out[1] & 0x7F {
            126 => (2, u64::from(u16::from_be_bytes([out[2], out[3]]))),
            127 => (8, u64::from_be_bytes(out[2..10].try_into().unwrap())),
            n => (0, u64::from(n)),
        };
        assert_eq!(declared, len as u64);
        let key_at = 2 + len_bytes;
        assert_eq!(out[key_at..key_at + 4], mask);
        let mut body = out[key_at + 4..].to_vec();
        assert_eq!(body.len(), len);
        if len > 4 {
            assert_ne!(body, payload, "masked on the wire");
        }
        apply_mask(&mut body, mask);
        assert_eq!(body, payload);
    }
}
