//! Read markers (only forward) and the audit log (newest first, filtered).

use crate::fixtures::*;
use crate::Harness;
use app::model::*;
use app::store::*;

pub async fn read_markers_only_move_forward(h: &mut Harness) {
    let store = h.store();
    let (room_a, ana) = make_room(store, "a").await;
    let (room_b, _) = make_room(store, "b").await;
    assert_eq!(store.read_marker(ana, room_a).await.unwrap(), 0);
    assert_eq!(store.mark_read(ana, room_a, 5).await.unwrap(), 5);
    assert_eq!(
        store.mark_read(ana, room_a, 3).await.unwrap(),
        5,
        "never moves back"
    );
    assert_eq!(store.read_marker(ana, room_a).await.unwrap(), 5);
    assert_eq!(store.mark_read(ana, room_b, 2).await.unwrap(), 2);
    let mut markers = store.read_markers(ana).await.unwrap();
    markers.sort_by_key(|m| m.seq);
    assert_eq!(
        markers,
        [
            ReadMarker {
                room_id: room_b,
                seq: 2
            },
            ReadMarker {
                room_id: room_a,
                seq: 5
            }
        ]
    );
    assert!(store.read_markers(UserId::new()).await.unwrap().is_empty());
}

pub async fn audit_log_is_newest_first_and_filterable(h: &mut Harness) {
    let store = h.store();
    let entry = |at: i64, actor: &str, action: &str, target: &str| AuditEntry {
        id: AuditId::new(),
        at: Timestamp(at),
        actor_id: None,
        actor_name: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        ip: "127.0.0.1".to_owned(),
        details: String::new(),
    };
    let e1 = entry(100, "Root", "user.disable", "user:bob");
    let e2 = entry(300, "root", "room.delete", "room:general");
    let e3 = entry(200, "mod", "user.disable", "user:cy");
    for e in [&e1, &e2, &e3] {
        store.append_audit(e).await.unwrap();
    }
    let all = store
        .list_audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.items,
        vec![e2.clone(), e3.clone(), e1.clone()],
        "newest first"
    );
    assert_eq!(all.total, 3);

    let by_actor = store
        .list_audit(&AuditQuery {
            actor: Some("ROOT".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_actor.items, vec![e2.clone(), e1.clone()]);
    let by_action = store
        .list_audit(&AuditQuery {
            action: Some("user.disable".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_action.items, vec![e3.clone(), e1.clone()]);
    let paged = store
        .list_audit(&AuditQuery {
            offset: 1,
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((paged.items, paged.total), (vec![e3], 3));
}

pub async fn notify_levels_are_kept_per_person_and_room(h: &mut Harness) {
    let store = h.store();
    let (room, ana) = make_room(store, "loud").await;
    let (other, _) = make_room(store, "quiet").await;
    let ben = UserId::new();
    assert_eq!(
        store.notify_level(ana, room).await.unwrap(),
        NotifyLevel::All
    );
    store
        .set_notify_level(ana, room, NotifyLevel::Nothing)
        .await
        .unwrap();
    store
        .set_notify_level(ben, other, NotifyLevel::Mentions)
        .await
        .unwrap();
    assert_eq!(
        store.notify_level(ana, room).await.unwrap(),
        NotifyLevel::Nothing
    );
    assert_eq!(
        store.notify_level(ana, other).await.unwrap(),
        NotifyLevel::All
    );
    assert_eq!(
        store.notify_level(ben, room).await.unwrap(),
        NotifyLevel::All
    );
    assert_eq!(
        store.notify_level(ben, other).await.unwrap(),
        NotifyLevel::Mentions
    );
    // Reading the room keeps the choice, and the choice does not move the read marker.
    assert_eq!(store.read_marker(ana, room).await.unwrap(), 0);
    store.mark_read(ana, room, 7).await.unwrap();
    assert_eq!(
        store.notify_level(ana, room).await.unwrap(),
        NotifyLevel::Nothing
    );
    store
        .set_notify_level(ana, room, NotifyLevel::Mentions)
        .await
        .unwrap();
    assert_eq!(store.read_marker(ana, room).await.unwrap(), 7);
    assert_eq!(
        store.notify_level(ana, room).await.unwrap(),
        NotifyLevel::Mentions
    );
    store
        .set_notify_level(ana, room, NotifyLevel::All)
        .await
        .unwrap();
    assert_eq!(
        store.notify_level(ana, room).await.unwrap(),
        NotifyLevel::All
    );
    store.delete_room(other).await.unwrap();
    assert_eq!(
        store.notify_level(ben, other).await.unwrap(),
        NotifyLevel::All
    );
}
