//! Files over the real server: images come back without their metadata, anything else is only ever
//! a download, readers of the room alone get a file, and an upload over the limit leaves nothing.

use crate::changes::{app_with_people, Witness};
use crate::helpers::*;
use app::model::{FileId, RoomId};
use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
use std::io::Cursor;

on_both_drivers!(
    an_image_comes_back_without_its_gps_position,
    other_files_are_attachments_and_rooms_keep_their_files,
    an_upload_over_the_limit_is_refused_and_leaves_nothing,
    a_message_carries_its_files_to_everyone_and_takes_them_when_deleted,
);

pub const MARKER: &[u8] = b"GPS-48.8584N-2.2945E";

/// A JPEG photo whose EXIF block holds a GPS position (with `MARKER` in it).
pub fn photo_with_gps(width: u32, height: u32) -> Vec<u8> {
    let picture = image::DynamicImage::new_rgb8(width, height);
    let mut jpeg = Cursor::new(Vec::new());
    picture
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let jpeg = jpeg.into_inner();
    // TIFF: IFD0 with one entry (GPSInfo -> the GPS IFD at 26); the GPS IFD has the latitude's
    // reference and a processing-method field holding the marker (at 56).
    let mut tiff: Vec<u8> = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend([1, 0]);
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0]);
    tiff.extend([0, 0, 0, 0]);
    tiff.extend([2, 0]);
    tiff.extend([1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend([0x1b, 0, 7, 0]);
    tiff.extend((MARKER.len() as u32).to_le_bytes());
    tiff.extend([56, 0, 0, 0]);
    tiff.extend([0, 0, 0, 0]);
    assert_eq!(tiff.len(), 56);
    tiff.extend(MARKER);
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xff, 0xe1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn upload(
    browser: &mut Browser,
    room: app::model::RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> Answer {
    browser
        .post_bytes(&format!("/api/files?room={room}&name={name}"), bytes)
        .await
}

async fn an_image_comes_back_without_its_gps_position(kind: StoreKind) {
    let (_app, [mut ana, mut ben]) = app_with_people(kind, ["ana", "ben"]).await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;
    let photo = photo_with_gps(64, 48);
    assert!(contains(&photo, MARKER) && contains(&photo, b"Exif"));
    assert_eq!(image::load_from_memory(&photo).unwrap().width(), 64);

    let sent = upload(&mut ana, room, "holiday.jpg", photo).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert_eq!(sent.body["content_type"], "image/jpeg");
    assert_eq!(sent.body["name"], "holiday.jpg");
    assert_eq!(sent.body["dimensions"], serde_json::json!([64, 48]));
    let id = sent.body["id"].as_str().unwrap().to_owned();

    let got = ben.get_raw(&format!("/api/files/{id}"), &[]).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert!(got.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    let etag = got.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = got.bytes().await.unwrap();
    assert!(!contains(&bytes, MARKER), "the GPS position is gone");
    assert!(!contains(&bytes, b"Exif"), "no EXIF block at all");
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (64, 48));

    let thumb = ben
        .get_raw(&format!("/api/files/{id}/thumbnail"), &[])
        .await;
    assert_eq!(thumb.status(), 200);
    assert!(image::load_from_memory(&thumb.bytes().await.unwrap()).is_ok());

    // Asked again with its ETag: checked, not sent again.
    let again = ben
        .get_raw(&format!("/api/files/{id}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(again.status(), 304);
    // A range of it.
    let part = ben
        .get_raw(&format!("/api/files/{id}"), &[("range", "bytes=0-9")])
        .await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 0-9/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), bytes[..10]);
    let past = ben
        .get_raw(&format!("/api/files/{id}"), &[("range", "bytes=999999-")])
        .await;
    assert_eq!(past.status(), 416);
}

async fn other_files_are_attachments_and_rooms_keep_their_files(kind: StoreKind) {
    let (_app, [mut ana, mut ben, mut carl]) = app_with_people(kind, ["ana", "ben", "carl"]).await;
    let open = public_room(&mut ana, &mut [&mut ben]).await;
    // An HTML page named like a picture is whatever its bytes say, and only ever a download.
    let page = b"<html><body><script>alert(document.cookie)</script></body></html>".to_vec();
    let sent = upload(&mut ana, open, "cat.png", page.clone()).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert_eq!(sent.body["content_type"], "text/html");
    assert_eq!(sent.body["dimensions"], serde_json::Value::Null);
    let id = sent.body["id"].as_str().unwrap().to_owned();
    let got = ben.get_raw(&format!("/api/files/{id}"), &[]).await;
    assert_eq!(got.status(), 200);
    let headers = got.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename*=UTF-8''cat.png"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(got.bytes().await.unwrap(), page);
    assert_eq!(
        ben.get_raw(&format!("/api/files/{id}/thumbnail"), &[])
            .await
            .status(),
        404
    );

    // A private room's file: its members only.
    let private = ana
        .post(
            "/api/rooms/create",
            &[("name", "Plans"), ("topic", ""), ("private", "true")],
        )
        .await;
    assert_eq!(private.status, 200, "{private:?}");
    let private: app::model::RoomId = private.body["id"].as_str().unwrap().parse().unwrap();
    let sent = upload(&mut ana, private, "plan.pdf", b"%PDF-1.7\n%secret".to_vec()).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert_eq!(sent.body["content_type"], "application/pdf");
    let secret = sent.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ana.get_raw(&format!("/api/files/{secret}"), &[])
            .await
            .status(),
        200
    );
    for outsider in [&carl, &ben] {
        let refused = outsider.get_raw(&format!("/api/files/{secret}"), &[]).await;
        assert_eq!(refused.status(), 403);
    }
    // Signed out: nothing.
    let stranger = Browser::new(&_app);
    assert_eq!(
        stranger
            .get_raw(&format!("/api/files/{id}"), &[])
            .await
            .status(),
        401
    );
    // Uploading to a room one is not in is refused.
    let intruding = upload(&mut carl, private, "x.txt", b"hello".to_vec()).await;
    assert!(matches!(intruding.status, 403 | 404), "{intruding:?}");
    let bad = upload(&mut carl, open, "x.txt", b"hello".to_vec()).await;
    assert_eq!(
        bad.status, 403,
        "carl is not a member of the open room: {bad:?}"
    );
    let nonsense = carl
        .post_bytes("/api/files?room=nonsense&name=x", b"hello".to_vec())
        .await;
    assert_eq!(nonsense.status, 400, "{nonsense:?}");
}

async fn an_upload_over_the_limit_is_refused_and_leaves_nothing(kind: StoreKind) {
    let app = spawn_app_with(kind, &[("MAX_UPLOAD_BYTES", "4096".into())]).await;
    let mut ana = Browser::new(&app);
    ana.register("ana", GOOD_PASSWORD).await;
    let room = public_room(&mut ana, &mut []).await;
    let refused = upload(&mut ana, room, "big.bin", vec![7; 5_000]).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    // Sent without a length (chunked), it is stopped while it is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![7u8; 1_000])).collect();
    let streamed = ana
        .post_bytes(
            &format!("/api/files?room={room}&name=big.bin"),
            reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
        )
        .await;
    assert_eq!(streamed.status, 413, "{streamed:?}");
    let usage = ana.get("/api/files/usage").await;
    assert_eq!(usage.body["used"], 0, "{usage:?}");
    if kind == StoreKind::Embedded {
        let blobs = app.data_dir.path().join("files");
        let stored = std::fs::read_dir(&blobs).map_or(0, |d| d.count());
        assert_eq!(stored, 0, "nothing in {}", blobs.display());
    }
    // Within the limit it works, and counts.
    let fine = upload(&mut ana, room, "small.bin", vec![7; 4_000]).await;
    assert_eq!(fine.status, 201, "{fine:?}");
    assert_eq!(ana.get("/api/files/usage").await.body["used"], 4_000);
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(width, height)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn uploaded(browser: &mut Browser, room: RoomId, name: &str, bytes: Vec<u8>) -> FileId {
    let sent = upload(browser, room, name, bytes).await;
    assert_eq!(sent.status, 201, "{sent:?}");
    sent.body["id"].as_str().unwrap().parse().unwrap()
}

/// The answer to the send of `nonce`: the acknowledged message's id, or the refusal.
async fn answer(
    ws: &mut WsClient,
    nonce: &str,
) -> Result<app::model::MessageId, (ErrorCode, String)> {
    ws.recv_until(|m| match m {
        ServerMsg::Ack { nonce: n, id, .. } if n == nonce => Some(Ok(*id)),
        ServerMsg::Error {
            nonce: Some(n),
            code,
            message,
            ..
        } if n == nonce => Some(Err((*code, message.clone()))),
        _ => None,
    })
    .await
}

async fn a_message_carries_its_files_to_everyone_and_takes_them_when_deleted(kind: StoreKind) {
    let (_app, [mut ana, mut ben]) = app_with_people(kind, ["ana", "ben"]).await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;
    let picture = uploaded(&mut ana, room, "cat.png", png(40, 30)).await;
    let plan = uploaded(&mut ana, room, "plan.pdf", b"%PDF-1.7\n%plan".to_vec()).await;
    let mut a = Witness::join(&ana, room).await;
    let mut b = Witness::join(&ben, room).await;

    // Files alone, no text: one message carrying both, in the order given, live for Ben; the
    // picture with the description Ana wrote (tidied), the PDF with none.
    let files = vec![picture, plan];
    let alts = vec![" A cat\nby the window ".to_owned()];
    let sent = a
        .send_and_wait(&send_with_alts(room, "f1", "", files.clone(), alts), "f1")
        .await;
    assert_eq!(sent.body, "");
    assert_eq!(sent.files[0].alt.as_deref(), Some("A cat by the window"));
    assert_eq!(sent.files[1].alt, None);
    let shown: Vec<String> = sent
        .files
        .iter()
        .map(|f| format!("{} {} {} {:?}", f.id, f.name, f.content_type, f.dimensions))
        .collect();
    assert_eq!(
        shown,
        vec![
            format!("{picture} cat.png image/png Some((40, 30))"),
            format!("{plan} plan.pdf application/pdf None"),
        ]
    );
    assert_eq!(b.change_of(sent.id).await.files, sent.files);
    let page = history_page(&mut ben, room, None, "files").await;
    assert_eq!(page.last().unwrap().files, sent.files, "history shows them");

    // The same send again (an ack lost on the way): the same message, nothing new.
    a.ws.send(&send_with_files(room, "f1", "", files.clone()))
        .await;
    assert_eq!(answer(&mut a.ws, "f1").await, Ok(sent.id));

    // A description too long, or more descriptions than files, is refused.
    let spare = uploaded(&mut ana, room, "dog.png", png(20, 20)).await;
    let long = "a".repeat(app::files::MAX_ALT_CHARS + 1);
    for (nonce, alts) in [("f6", vec![long]), ("f7", vec!["one".into(), "two".into()])] {
        a.ws.send(&send_with_alts(room, nonce, "", vec![spare], alts))
            .await;
        let (code, why) = answer(&mut a.ws, nonce).await.unwrap_err();
        assert_eq!(code, ErrorCode::Invalid, "{why}");
    }

    // Files go with one message only, only their uploader sends them, ten at most.
    a.ws.send(&send_with_files(room, "f2", "again", vec![picture]))
        .await;
    let (code, why) = answer(&mut a.ws, "f2").await.unwrap_err();
    assert_eq!(code, ErrorCode::Invalid);
    assert!(why.contains("another message"), "{why}");
    let other = uploaded(&mut ana, room, "notes.txt", b"notes".to_vec()).await;
    b.ws.send(&send_with_files(room, "b1", "mine now", vec![other]))
        .await;
    assert_eq!(
        answer(&mut b.ws, "b1").await.unwrap_err().0,
        ErrorCode::Invalid
    );
    a.ws.send(&send_with_files(room, "f3", "twice", vec![other, other]))
        .await;
    assert_eq!(
        answer(&mut a.ws, "f3").await.unwrap_err().0,
        ErrorCode::Invalid
    );
    let many: Vec<FileId> = (0..=app::files::MAX_FILES_PER_MESSAGE)
        .map(|_| other)
        .collect();
    a.ws.send(&send_with_files(room, "f4", "many", many)).await;
    assert_eq!(
        answer(&mut a.ws, "f4").await.unwrap_err().0,
        ErrorCode::Invalid
    );
    // The refused sends took nothing: the upload still goes with a message of its own.
    let notes = a
        .send_and_wait(&send_with_files(room, "f5", "my notes", vec![other]), "f5")
        .await;
    assert_eq!(notes.files[0].id, other);

    // Deleting the message takes its files: gone for everyone, and off the uploader's quota.
    let before = ana.get("/api/files/usage").await;
    let deleted = a.change(sent.id, ClientMsg::Delete { id: sent.id }).await;
    assert!(deleted.deleted && deleted.files.is_empty());
    for id in [picture, plan] {
        let gone = ben.get_raw(&format!("/api/files/{id}"), &[]).await;
        assert_eq!(gone.status(), 404);
    }
    assert_eq!(
        ben.get_raw(&format!("/api/files/{other}"), &[])
            .await
            .status(),
        200,
        "another message's file stays"
    );
    let after = ana.get("/api/files/usage").await;
    assert!(
        after.body["used"].as_u64().unwrap() < before.body["used"].as_u64().unwrap(),
        "{before:?} -> {after:?}"
    );
}
