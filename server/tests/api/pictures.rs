//! Profile pictures over the real server: an image is cut to a square without its metadata and
//! shown to everyone signed in, beside the person's messages and in member lists; a new one
//! replaces (and deletes) the last; anything but an image is refused and leaves nothing.

use crate::changes::{app_with_people, Witness};
use crate::files::{contains, photo_with_gps, MARKER};
use crate::helpers::*;
use app::model::FileId;

on_both_drivers!(a_profile_picture_is_shown_everywhere_and_replaced);

async fn a_profile_picture_is_shown_everywhere_and_replaced(kind: StoreKind) {
    let (app, [mut ana, mut ben]) = app_with_people(kind, ["ana", "ben"]).await;
    let room = public_room(&mut ana, &mut [&mut ben]).await;

    // Not an image: refused, nothing stored.
    let text = ana
        .post_bytes("/api/profile/picture", b"<svg onload=alert(1)>".to_vec())
        .await;
    assert_eq!(text.status, 400, "{text:?}");
    assert!(text
        .body
        .to_string()
        .contains("must be a PNG, JPEG, GIF or WebP"));
    assert_eq!(ana.get("/api/files/usage").await.body["used"], 0);
    assert_eq!(ana.me().await.body["avatar"], serde_json::Value::Null);

    // A wide photo with a GPS position: a square without it.
    let saved = ana
        .post_bytes("/api/profile/picture", photo_with_gps(120, 80))
        .await;
    assert_eq!(saved.status, 200, "{saved:?}");
    let first: FileId = saved.body["avatar"].as_str().unwrap().parse().unwrap();
    assert_eq!(ana.me().await.body["avatar"], first.to_string());
    let got = ben.get_raw(&format!("/api/files/{first}"), &[]).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    let bytes = got.bytes().await.unwrap();
    assert!(!contains(&bytes, MARKER) && !contains(&bytes, b"Exif"));
    let picture = image::load_from_memory(&bytes).unwrap();
    assert_eq!((picture.width(), picture.height()), (80, 80));
    let small = ben
        .get_raw(&format!("/api/files/{first}/thumbnail"), &[])
        .await;
    assert_eq!(small.status(), 200);
    // Only for people signed in.
    assert_eq!(
        app.get(&format!("/api/files/{first}/thumbnail"))
            .await
            .status(),
        401
    );

    // Beside Ana's messages (live and in the history) and in the member list.
    let mut witness = Witness::join(&ben, room).await;
    let mut speaker = Witness::join(&ana, room).await;
    let said = speaker.say(room, "p1").await;
    assert_eq!(said.author_avatar, Some(first));
    assert_eq!(witness.change_of(said.id).await.author_avatar, Some(first));
    let history = history_page(&mut ben, room, None, "history").await;
    assert_eq!(history.last().unwrap().author_avatar, Some(first));
    let members = ben.get(&format!("/api/rooms/members?room={room}")).await;
    let listed: Vec<_> = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["avatar"].clone(),
            )
        })
        .collect();
    assert!(listed.contains(&("ana".to_owned(), first.to_string().into())));
    assert!(listed.contains(&("ben".to_owned(), serde_json::Value::Null)));

    // A new picture replaces the last, which is gone; only the new one counts against the quota.
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::new_rgb8(40, 60)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let again = ana.post_bytes("/api/profile/picture", png).await;
    assert_eq!(again.status, 200, "{again:?}");
    let second: FileId = again.body["avatar"].as_str().unwrap().parse().unwrap();
    assert_ne!(second, first);
    assert_eq!(
        ben.get_raw(&format!("/api/files/{first}"), &[])
            .await
            .status(),
        404
    );
    let used = ana.get("/api/files/usage").await.body["used"]
        .as_u64()
        .unwrap();
    let original = ben
        .get_raw(&format!("/api/files/{second}"), &[])
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    let thumbnail = ben
        .get_raw(&format!("/api/files/{second}/thumbnail"), &[])
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    assert_eq!(used, (original + thumbnail) as u64);

    // Removed: the initials again, the file gone, nothing counted.
    let removed = ana.delete("/api/profile/picture").await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert_eq!(ana.me().await.body["avatar"], serde_json::Value::Null);
    assert_eq!(
        ben.get_raw(&format!("/api/files/{second}"), &[])
            .await
            .status(),
        404
    );
    assert_eq!(ana.get("/api/files/usage").await.body["used"], 0);
    // Her messages are read with her initials again.
    let history = history_page(&mut ben, room, None, "history after removal").await;
    assert_eq!(history.last().unwrap().author_avatar, None);
}
