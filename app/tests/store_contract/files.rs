//! Files: bytes written and read back (whole and in ranges), shared thumbnails, deletion, the quota
//! (also under concurrent uploads), attaching to a message, and the clean-up of what nobody attached.

use crate::fixtures::*;
use crate::Harness;
use app::model::*;
use app::store::*;

fn new_file(owner: UserId, room: Option<RoomId>, name: &str, at: i64) -> NewFile {
    NewFile {
        id: FileId::new(),
        owner,
        room,
        name: name.to_owned(),
        content_type: "image/png".to_owned(),
        dimensions: Some((640, 480)),
        created_at: Timestamp(at),
    }
}

const QUOTA: u64 = 1 << 20;
/// A clean-up bound after everything here (the tests' times are small; files' bytes are written now).
const LATER: Timestamp = Timestamp(4_000_000_000_000);

pub async fn files_are_read_whole_and_in_ranges_and_deleted(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "files").await;
    let store = h.store();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5_000).collect();
    let thumb = b"a small picture".to_vec();
    let first = new_file(ana, Some(room), "cat.png", 1_000);
    let stored = store
        .put_file(&first, bytes.clone(), Some(thumb.clone()), QUOTA)
        .await
        .unwrap();
    assert_eq!(stored.original, Blob::of(&bytes));
    assert_eq!(stored.message, None);
    assert_eq!(store.file(first.id).await.unwrap(), Some(stored.clone()));
    let read = |id, part, range| async move { store.read_file(id, part, range).await.unwrap() };
    assert_eq!(
        read(first.id, FilePart::Original, None).await,
        Some(bytes.clone())
    );
    assert_eq!(
        read(first.id, FilePart::Original, Some((10, 20))).await,
        Some(bytes[10..20].to_vec())
    );
    assert_eq!(
        read(first.id, FilePart::Original, Some((4_990, 9_999))).await,
        Some(bytes[4_990..].to_vec()),
        "a range past the end stops at the end"
    );
    assert_eq!(
        read(first.id, FilePart::Thumbnail, None).await,
        Some(thumb.clone())
    );
    assert_eq!(
        store.file_bytes_of(ana).await.unwrap(),
        (bytes.len() + thumb.len()) as u64
    );
    assert_eq!(
        store.put_file(&first, bytes.clone(), None, QUOTA).await,
        Err(StoreError::Duplicate("file"))
    );

    // The same bytes again, without a thumbnail: a file of its own.
    let second = new_file(ana, Some(room), "same.png", 1_001);
    store
        .put_file(&second, bytes.clone(), None, QUOTA)
        .await
        .unwrap();
    assert_eq!(read(second.id, FilePart::Thumbnail, None).await, None);

    assert!(store.delete_file(first.id).await.unwrap());
    assert!(!store.delete_file(first.id).await.unwrap());
    assert_eq!(store.file(first.id).await.unwrap(), None);
    assert_eq!(read(first.id, FilePart::Original, None).await, None);
    // A clean-up after the deletion keeps what the other file (sent in a message) needs.
    let sent = store
        .append_message(&message(room, ana, "n1", 1_002))
        .await
        .unwrap()
        .message;
    store
        .attach_files(sent.id, room, ana, &[second.id])
        .await
        .unwrap();
    store.clean_up_files(LATER).await.unwrap();
    assert_eq!(
        read(second.id, FilePart::Original, None).await,
        Some(bytes.clone())
    );
    assert_eq!(store.file_bytes_of(ana).await.unwrap(), bytes.len() as u64);
    assert_eq!(read(FileId::new(), FilePart::Original, None).await, None);
}

pub async fn the_file_quota_holds_under_concurrent_uploads(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "quota").await;
    let store = h.store();
    let quota = 100;
    store
        .put_file(&new_file(ana, Some(room), "a", 1), vec![1; 60], None, quota)
        .await
        .unwrap();
    let over = store
        .put_file(&new_file(ana, Some(room), "b", 2), vec![2; 50], None, quota)
        .await;
    assert!(matches!(over, Err(StoreError::Limit(_))), "{over:?}");
    assert_eq!(store.file_bytes_of(ana).await.unwrap(), 60);
    // Someone else's quota is their own.
    let bob = UserId::new();
    store
        .put_file(&new_file(bob, Some(room), "c", 3), vec![3; 90], None, quota)
        .await
        .unwrap();

    // Eight uploads of 30 bytes at once into 100 - 60 = 40 bytes left: exactly one fits.
    let shared = h.shared();
    let uploads: Vec<_> = (0..8u8)
        .map(|i| {
            let store = shared.clone();
            tokio::spawn(async move {
                let file = new_file(ana, Some(room), &format!("p{i}"), 10 + i as i64);
                store.put_file(&file, vec![i; 30], None, quota).await
            })
        })
        .collect();
    let mut fitted = 0;
    for upload in uploads {
        match upload.await.unwrap() {
            Ok(_) => fitted += 1,
            Err(StoreError::Limit(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fitted, 1);
    assert_eq!(store.file_bytes_of(ana).await.unwrap(), 90);
}

pub async fn files_attach_to_a_message_and_the_rest_is_cleaned_up(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "attach").await;
    let (other, _) = make_room(h.store(), "other").await;
    let store = h.store();
    let sent = store
        .append_message(&message(room, ana, "n1", 5_000))
        .await
        .unwrap()
        .message;
    let a = new_file(ana, Some(room), "a.pdf", 1_000);
    let b = new_file(ana, Some(room), "b.pdf", 1_000);
    let late = new_file(ana, Some(room), "late.pdf", 9_000);
    for f in [&a, &b, &late] {
        store
            .put_file(f, f.name.as_bytes().to_vec(), None, QUOTA)
            .await
            .unwrap();
    }
    // Someone else's, another room's or an unknown file attaches nothing at all.
    for (owner, in_room, files) in [
        (UserId::new(), room, vec![a.id]),
        (ana, other, vec![a.id]),
        (ana, room, vec![a.id, FileId::new()]),
    ] {
        assert_eq!(
            store.attach_files(sent.id, in_room, owner, &files).await,
            Err(StoreError::NotFound("file"))
        );
    }
    assert_eq!(store.file(a.id).await.unwrap().unwrap().message, None);
    store
        .attach_files(sent.id, room, ana, &[a.id])
        .await
        .unwrap();
    assert_eq!(
        store.file(a.id).await.unwrap().unwrap().message,
        Some(sent.id)
    );
    // Attaching again to the same message (a retried send) changes nothing; to another, nothing.
    store
        .attach_files(sent.id, room, ana, &[a.id])
        .await
        .unwrap();
    let second = store
        .append_message(&message(room, ana, "n2", 5_001))
        .await
        .unwrap()
        .message;
    assert_eq!(
        store.attach_files(second.id, room, ana, &[a.id]).await,
        Err(StoreError::NotFound("file")),
        "attached to one message only"
    );
    assert_eq!(
        store.file(a.id).await.unwrap().unwrap().message,
        Some(sent.id)
    );

    // Pending files older than the clean-up's bound go; attached and newer ones stay.
    assert_eq!(store.clean_up_files(Timestamp(5_000)).await.unwrap(), 1);
    assert_eq!(store.file(b.id).await.unwrap(), None);
    assert!(store.file(a.id).await.unwrap().is_some());
    assert!(store.file(late.id).await.unwrap().is_some());

    // Deleting the message's files.
    assert_eq!(store.delete_message_files(sent.id).await.unwrap(), 1);
    assert_eq!(store.file(a.id).await.unwrap(), None);
    assert_eq!(store.delete_message_files(sent.id).await.unwrap(), 0);
    assert_eq!(
        store.file_bytes_of(ana).await.unwrap(),
        late.name.len() as u64
    );
}

pub async fn a_message_shows_its_files_until_it_is_deleted(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "shown").await;
    let store = h.store();
    let picture = new_file(ana, Some(room), "cat.png", 1_000);
    let stored = store
        .put_file(&picture, vec![7; 100], Some(vec![8; 10]), QUOTA)
        .await
        .unwrap();
    let shown = app::files::FileView {
        id: stored.id,
        name: stored.name.clone(),
        content_type: stored.content_type.clone(),
        size: 100,
        dimensions: Some((640, 480)),
        // Kept with the message by both drivers.
        alt: Some("A grey cat asleep on a keyboard".to_owned()),
    };
    let sent = store
        .append_message(&NewMessage {
            files: vec![shown.clone()],
            ..message(room, ana, "with-file", 2_000)
        })
        .await
        .unwrap()
        .message;
    assert_eq!(sent.files, vec![shown.clone()]);
    let read_back = store.message_by_id(sent.id).await.unwrap().unwrap();
    assert_eq!(read_back.files, vec![shown.clone()]);
    let page = store.history(room, HistoryQuery::latest(10)).await.unwrap();
    assert_eq!(page[0].files, vec![shown]);
    // An edit keeps them; a deletion clears them with the text.
    let edited = store
        .edit_message(sent.id, &body("now with words"), Timestamp(3_000))
        .await
        .unwrap();
    assert_eq!(edited.files.len(), 1);
    store
        .delete_message(sent.id, Timestamp(4_000))
        .await
        .unwrap();
    let deleted = store.message_by_id(sent.id).await.unwrap().unwrap();
    assert!(deleted.files.is_empty());
}

pub async fn deleting_a_rooms_files_leaves_other_rooms_files(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "going").await;
    let (other, _) = make_room(h.store(), "staying").await;
    let store = h.store();
    let here = [
        new_file(ana, Some(room), "a.pdf", 1_000),
        new_file(ana, Some(room), "b.pdf", 1_001),
    ];
    let there = new_file(ana, Some(other), "c.pdf", 1_002);
    let avatar = new_file(ana, None, "me.png", 1_003);
    for f in here.iter().chain([&there, &avatar]) {
        store.put_file(f, vec![1; 10], None, QUOTA).await.unwrap();
    }
    let sent = store
        .append_message(&message(room, ana, "n1", 2_000))
        .await
        .unwrap()
        .message;
    store
        .attach_files(sent.id, room, ana, &[here[0].id])
        .await
        .unwrap();
    assert_eq!(store.delete_room_files(room).await.unwrap(), 2);
    for f in &here {
        assert_eq!(store.file(f.id).await.unwrap(), None);
    }
    assert!(store.file(there.id).await.unwrap().is_some());
    assert!(store.file(avatar.id).await.unwrap().is_some());
    assert_eq!(store.file_bytes_of(ana).await.unwrap(), 20);
}

pub async fn a_profile_picture_replaces_the_last_and_outlives_the_clean_up(h: &mut Harness) {
    let (room, ana) = make_room(h.store(), "pictures").await;
    let store = h.store();
    let ben = user("ben_pictures");
    store.create_user(&ben).await.unwrap();
    let upload = |owner, room, at| async move {
        let file = new_file(owner, room, "me.png", at);
        store
            .put_file(&file, vec![at as u8; 100], Some(vec![1; 10]), QUOTA)
            .await
            .unwrap();
        file.id
    };

    let first = upload(ana, None, 1_000).await;
    let changed = store.set_picture(ana, Some(first)).await.unwrap();
    assert_eq!(changed.avatar, Some(first));
    assert_eq!(
        store.user_by_id(ana).await.unwrap().unwrap().avatar,
        Some(first)
    );
    // Setting the same picture again changes nothing.
    store.set_picture(ana, Some(first)).await.unwrap();
    assert!(store.file(first).await.unwrap().is_some());

    // A picture is in use: the clean-up of pending uploads keeps it, and takes an upload nobody used.
    let unused = upload(ana, None, 1_001).await;
    assert_eq!(store.clean_up_files(LATER).await.unwrap(), 1);
    assert!(store.file(first).await.unwrap().is_some());
    assert_eq!(store.file(unused).await.unwrap(), None);

    // What cannot be a picture: a file shared in a room, someone else's, a missing one.
    let shared = upload(ana, Some(room), 1_002).await;
    let bens = upload(ben.id, None, 1_003).await;
    for (owner, file) in [
        (ana, shared),
        (ana, bens),
        (ben.id, first),
        (ana, FileId::new()),
    ] {
        assert_eq!(
            store.set_picture(owner, Some(file)).await,
            Err(StoreError::NotFound("file"))
        );
    }
    assert_eq!(
        store.set_picture(UserId::new(), None).await,
        Err(StoreError::NotFound("user"))
    );
    assert_eq!(
        store.user_by_id(ana).await.unwrap().unwrap().avatar,
        Some(first)
    );

    // A new picture replaces the old one, which is deleted (and no longer counted).
    let second = upload(ana, None, 1_004).await;
    store.set_picture(ana, Some(second)).await.unwrap();
    assert_eq!(store.file(first).await.unwrap(), None);
    let in_room = store.file(shared).await.unwrap().unwrap().stored_bytes();
    let picture = store.file(second).await.unwrap().unwrap().stored_bytes();
    assert_eq!(store.file_bytes_of(ana).await.unwrap(), in_room + picture);

    // Taking it away deletes it too.
    let cleared = store.set_picture(ana, None).await.unwrap();
    assert_eq!(cleared.avatar, None);
    assert_eq!(store.file(second).await.unwrap(), None);
    assert_eq!(store.user_by_id(ana).await.unwrap().unwrap().avatar, None);
}
