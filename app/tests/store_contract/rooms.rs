//! Rooms and memberships: creation, direct-pair uniqueness, listing, members, deletion of everything.

use crate::fixtures::*;
use crate::Harness;
use app::domain::*;
use app::model::*;
use app::store::*;

pub async fn rooms_crud_and_listing(h: &mut Harness) {
    let store = h.store();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let general = room(RoomKind::Public, "General", ana.id);
    let random = room(RoomKind::Public, "random", ana.id);
    let secret = room(RoomKind::Private, "Secret plans", ana.id);
    let old = room(RoomKind::Public, "archive me", ana.id);
    for r in [&general, &random, &secret, &old] {
        store
            .create_room(r, &[member(r.id, ana.id, MemberRole::Owner, 10)])
            .await
            .unwrap();
    }
    assert_eq!(
        store.room_by_id(general.id).await.unwrap(),
        Some(general.clone())
    );
    assert_eq!(store.room_by_id(RoomId::new()).await.unwrap(), None);
    assert_eq!(store.count_rooms().await.unwrap(), 4);

    let archived = store
        .update_room(
            old.id,
            &RoomPatch {
                archived: Some(true),
                ..RoomPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(archived.archived);
    let renamed = store
        .update_room(
            random.id,
            &RoomPatch {
                name: Some(RoomName::parse("Banter").unwrap()),
                topic: Some(RoomTopic::parse("chit-chat").unwrap()),
                archived: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.topic.as_str()),
        ("Banter", "chit-chat")
    );
    assert_eq!(
        store
            .update_room(RoomId::new(), &RoomPatch::default())
            .await,
        Err(StoreError::NotFound("room"))
    );

    let names = |page: &Page<RoomRecord>| {
        page.items
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    let public = store
        .list_rooms(&RoomQuery {
            kind: Some(RoomKind::Public),
            limit: 50,
            ..RoomQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        names(&public),
        ["Banter", "General"],
        "archived rooms are hidden, order ignores case"
    );
    assert_eq!(public.total, 2);

    let everything = store
        .list_rooms(&RoomQuery {
            include_archived: true,
            limit: 50,
            ..RoomQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        names(&everything),
        ["archive me", "Banter", "General", "Secret plans"]
    );

    let searched = store
        .list_rooms(&RoomQuery {
            search: Some("PLAN".into()),
            limit: 50,
            ..RoomQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&searched), ["Secret plans"]);

    let paged = store
        .list_rooms(&RoomQuery {
            include_archived: true,
            offset: 1,
            limit: 2,
            ..RoomQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&paged), ["Banter", "General"]);
    assert_eq!(paged.total, 4);

    let mine: Vec<_> = store
        .rooms_of_user(ana.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(mine, ["archive me", "Banter", "General", "Secret plans"]);
}

pub async fn direct_rooms_are_unique_per_pair(h: &mut Harness) {
    let store = h.store();
    let (ana, bob) = (user("ana"), user("bob"));
    store.create_user(&ana).await.unwrap();
    store.create_user(&bob).await.unwrap();
    let key = direct_key(ana.id, bob.id);
    let dm = RoomRecord {
        direct_key: Some(key.clone()),
        ..room(RoomKind::Direct, "", ana.id)
    };
    store
        .create_room(
            &dm,
            &[
                member(dm.id, ana.id, MemberRole::Member, 1),
                member(dm.id, bob.id, MemberRole::Member, 1),
            ],
        )
        .await
        .unwrap();

    let again = RoomRecord {
        direct_key: Some(direct_key(bob.id, ana.id)),
        ..room(RoomKind::Direct, "", bob.id)
    };
    assert_eq!(
        store.create_room(&again, &[]).await,
        Err(StoreError::Duplicate("direct room"))
    );
    assert_eq!(store.direct_room(&key).await.unwrap(), Some(dm.clone()));
    assert_eq!(store.direct_room("nobody:nobody").await.unwrap(), None);
    assert_eq!(store.list_members(dm.id).await.unwrap().len(), 2);
    assert_eq!(store.rooms_of_user(bob.id).await.unwrap(), vec![dm]);
}

pub async fn memberships(h: &mut Harness) {
    let store = h.store();
    let (ana, bob, cy) = (user("ana"), user("bob"), user("cy"));
    for u in [&ana, &bob, &cy] {
        store.create_user(u).await.unwrap();
    }
    let r = room(RoomKind::Private, "team", ana.id);
    store
        .create_room(&r, &[member(r.id, ana.id, MemberRole::Owner, 10)])
        .await
        .unwrap();

    store
        .add_member(&member(r.id, cy.id, MemberRole::Member, 30))
        .await
        .unwrap();
    store
        .add_member(&member(r.id, bob.id, MemberRole::Member, 20))
        .await
        .unwrap();
    assert_eq!(
        store
            .add_member(&member(r.id, bob.id, MemberRole::Member, 40))
            .await,
        Err(StoreError::Duplicate("membership"))
    );
    assert_eq!(
        store
            .add_member(&member(RoomId::new(), bob.id, MemberRole::Member, 40))
            .await,
        Err(StoreError::NotFound("room"))
    );

    let members: Vec<_> = store
        .list_members(r.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(members, [ana.id, bob.id, cy.id], "ordered by join time");
    let ana_membership = store.membership(r.id, ana.id).await.unwrap().unwrap();
    assert_eq!(ana_membership.role, MemberRole::Owner);

    // Checking many at once: members only, in the order asked, each once.
    let stranger = UserId::new();
    assert_eq!(
        store
            .members_among(r.id, &[cy.id, stranger, ana.id, cy.id])
            .await
            .unwrap(),
        [cy.id, ana.id]
    );
    assert_eq!(
        store.members_among(RoomId::new(), &[ana.id]).await.unwrap(),
        []
    );
    assert_eq!(store.members_among(r.id, &[]).await.unwrap(), []);

    store.remove_member(r.id, bob.id).await.unwrap();
    assert_eq!(store.membership(r.id, bob.id).await.unwrap(), None);
    assert_eq!(
        store.members_among(r.id, &[bob.id, ana.id]).await.unwrap(),
        [ana.id]
    );
    assert!(store.rooms_of_user(bob.id).await.unwrap().is_empty());
    assert_eq!(
        store.remove_member(r.id, bob.id).await,
        Err(StoreError::NotFound("membership"))
    );
    assert_eq!(store.list_members(r.id).await.unwrap().len(), 2);
}

pub async fn deleting_a_room_removes_everything_in_it(h: &mut Harness) {
    let store = h.store();
    let (room_id, owner) = make_room(store, "doomed").await;
    let (other_room, other_owner) = make_room(store, "survivor").await;
    append_n(store, room_id, owner, 3).await;
    append_n(store, other_room, other_owner, 2).await;
    store.mark_read(owner, room_id, 2).await.unwrap();
    let first = store
        .history(room_id, HistoryQuery::latest(1))
        .await
        .unwrap()
        .remove(0);

    store.delete_room(room_id).await.unwrap();
    assert_eq!(store.room_by_id(room_id).await.unwrap(), None);
    assert_eq!(store.membership(room_id, owner).await.unwrap(), None);
    assert!(store
        .history(room_id, HistoryQuery::latest(50))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.message_by_id(first.id).await.unwrap(), None);
    assert_eq!(store.read_marker(owner, room_id).await.unwrap(), 0);
    assert_eq!(store.last_seq(room_id).await.unwrap(), 0);
    assert!(store.rooms_of_user(owner).await.unwrap().is_empty());
    assert_eq!(
        store.delete_room(room_id).await,
        Err(StoreError::NotFound("room"))
    );

    assert_eq!(
        store
            .history(other_room, HistoryQuery::latest(50))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.count_rooms().await.unwrap(), 1);
    assert_eq!(store.message_stats(Timestamp(0)).await.unwrap().total, 2);
}

pub async fn invitations_wait_for_the_invitee(h: &mut Harness) {
    let store = h.store();
    let (ana, ben) = (user("ana"), user("ben"));
    store.create_user(&ana).await.unwrap();
    store.create_user(&ben).await.unwrap();
    let r = room(RoomKind::Private, "Plans", ana.id);
    store
        .create_room(&r, &[member(r.id, ana.id, MemberRole::Owner, 1)])
        .await
        .unwrap();
    let invitation = InvitationRecord {
        room_id: r.id,
        user_id: ben.id,
        invited_by: ana.id,
        at: Timestamp(5),
    };
    store.add_invitation(&invitation).await.unwrap();
    assert_eq!(
        store.add_invitation(&invitation).await,
        Err(StoreError::Duplicate("invitation"))
    );
    assert_eq!(
        store.invitations_of(ben.id).await.unwrap(),
        std::slice::from_ref(&invitation)
    );
    assert!(store.invitations_of(ana.id).await.unwrap().is_empty());
    assert_eq!(
        store.membership(r.id, ben.id).await.unwrap(),
        None,
        "not a member yet"
    );
    assert!(store.remove_invitation(r.id, ben.id).await.unwrap());
    assert!(!store.remove_invitation(r.id, ben.id).await.unwrap());
    assert!(store.invitations_of(ben.id).await.unwrap().is_empty());
    // An invitation to a room that is gone, and one that goes with its room.
    let mut gone = invitation.clone();
    gone.room_id = RoomId::new();
    assert_eq!(
        store.add_invitation(&gone).await,
        Err(StoreError::NotFound("room"))
    );
    store.add_invitation(&invitation).await.unwrap();
    store.delete_room(r.id).await.unwrap();
    assert!(store.invitations_of(ben.id).await.unwrap().is_empty());
}
