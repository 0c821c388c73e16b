//! Records and helpers the contract tests share.

use app::domain::{DisplayName, MessageBody, Nonce, RoomName, RoomTopic, Username};
use app::model::*;
use app::store::*;

pub fn user(name: &str) -> UserRecord {
    UserRecord {
        id: UserId::new(),
        // The store keeps what it is given; the rules belong to `Username::parse`.
        username: Username::from_stored(name.to_owned()),
        display_name: DisplayName::from_stored(format!("{name} display")),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: Role::User,
        disabled: false,
        must_change_password: false,
        created_at: Timestamp(1_000),
        last_seen_at: None,
        totp_secret: None,
        totp_pending: None,
        totp_last_step: 0,
        recovery_hashes: Vec::new(),
        avatar: None,
    }
}

pub fn session(user: UserId, hash: &str, last_used: i64, expires: i64) -> SessionRecord {
    SessionRecord {
        id: SessionId::new(),
        user_id: user,
        refresh_hash: hash.to_owned(),
        created_at: Timestamp(1_000),
        last_used_at: Timestamp(last_used),
        expires_at: Timestamp(expires),
        revoked_at: None,
        grace_claimed: false,
        user_agent: "Mozilla/5.0 (test)".to_owned(),
        ip: "127.0.0.1".to_owned(),
    }
}

pub fn room(kind: RoomKind, name: &str, owner: UserId) -> RoomRecord {
    RoomRecord {
        id: RoomId::new(),
        kind,
        name: RoomName::from_stored(name.to_owned()),
        topic: RoomTopic::parse(&format!("about {name}")).unwrap(),
        created_by: owner,
        created_at: Timestamp(2_000),
        archived: false,
        direct_key: None,
    }
}

pub fn member(room: RoomId, user: UserId, role: MemberRole, joined: i64) -> MembershipRecord {
    MembershipRecord {
        room_id: room,
        user_id: user,
        role,
        joined_at: Timestamp(joined),
    }
}

pub fn body(text: &str) -> MessageBody {
    MessageBody::parse(text).expect("a valid body")
}

pub fn message(room: RoomId, author: UserId, nonce: &str, at: i64) -> NewMessage {
    NewMessage {
        room_id: room,
        author_id: author,
        body: body(&format!("body {nonce}")),
        nonce: Nonce::parse(nonce).expect("a valid nonce"),
        created_at: Timestamp(at),
        mentions: Vec::new(),
        thread: None,
        files: Vec::new(),
    }
}

/// A reply to `root`, only in its thread or (`in_room`) also in the room.
pub fn reply(
    room: RoomId,
    author: UserId,
    root: MessageId,
    in_room: bool,
    nonce: &str,
    at: i64,
) -> NewMessage {
    NewMessage {
        thread: Some((root, in_room)),
        ..message(room, author, nonce, at)
    }
}

/// A room with one owner, ready for messages.
pub async fn make_room(store: &dyn Store, name: &str) -> (RoomId, UserId) {
    let owner = user(&format!("owner_{name}"));
    store.create_user(&owner).await.unwrap();
    let r = room(RoomKind::Public, name, owner.id);
    store
        .create_room(&r, &[member(r.id, owner.id, MemberRole::Owner, 1)])
        .await
        .unwrap();
    (r.id, owner.id)
}

pub async fn append_n(store: &dyn Store, room: RoomId, author: UserId, n: u64) {
    for i in 1..=n {
        let appended = store
            .append_message(&message(room, author, &format!("n{i}"), i as i64))
            .await;
        assert_eq!(appended.unwrap().message.seq, i);
    }
}

pub fn seqs(messages: &[MessageRecord]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

/// Every sequence in the room, read page by page from the start.
pub async fn all_seqs_in(store: &dyn Store, room: RoomId) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .history(room, HistoryQuery::after(after, MAX_PAGE_SIZE))
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(seqs(&page));
    }
    seen
}
