//! Users: creation, lookups, unique usernames in any letter case, updates, search and paging.

use crate::fixtures::*;
use crate::Harness;
use app::domain::*;
use app::model::*;
use app::store::*;

pub async fn reports_driver_and_answers_ping(h: &mut Harness) {
    let store = h.store();
    assert!(["embedded", "mongodb"].contains(&store.driver()));
    store.ping().await.expect("ping");
}

pub async fn users_crud(h: &mut Harness) {
    let store = h.store();
    let ana = user("Ana");
    store.create_user(&ana).await.unwrap();

    assert_eq!(store.user_by_id(ana.id).await.unwrap(), Some(ana.clone()));
    assert_eq!(
        store.user_by_username("ana").await.unwrap(),
        Some(ana.clone())
    );
    assert_eq!(
        store.user_by_username("ANA").await.unwrap(),
        Some(ana.clone())
    );
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
    assert_eq!(store.user_by_id(UserId::new()).await.unwrap(), None);

    let patch = UserPatch {
        display_name: Some(DisplayName::from_stored("Ana Maria".into())),
        role: Some(Role::Admin),
        must_change_password: Some(true),
        last_seen_at: Some(Timestamp(5_000)),
        ..UserPatch::default()
    };
    let updated = store.update_user(ana.id, &patch).await.unwrap();
    assert_eq!(updated.display_name, "Ana Maria");
    assert_eq!(updated.role, Role::Admin);
    assert!(updated.must_change_password);
    assert_eq!(updated.last_seen_at, Some(Timestamp(5_000)));
    assert_eq!(
        updated.password_hash, ana.password_hash,
        "untouched fields stay"
    );
    assert_eq!(
        store.user_by_id(ana.id).await.unwrap(),
        Some(updated.clone())
    );

    let disabled = store
        .update_user(
            ana.id,
            &UserPatch {
                disabled: Some(true),
                password_hash: Some("new-hash".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.password_hash, "new-hash");

    store.create_user(&user("bob")).await.unwrap();
    let stats = store.user_stats().await.unwrap();
    assert_eq!(
        stats,
        UserStats {
            total: 2,
            disabled: 1,
            // Ana is an admin, but a disabled one.
            admins: 0
        }
    );
}

pub async fn usernames_are_unique_ignoring_case(h: &mut Harness) {
    let store = h.store();
    store.create_user(&user("Ana")).await.unwrap();
    assert_eq!(
        store.create_user(&user("ana")).await,
        Err(StoreError::Duplicate("username"))
    );
    assert_eq!(
        store.create_user(&user("ANA")).await,
        Err(StoreError::Duplicate("username"))
    );
    store.create_user(&user("ana2")).await.unwrap();
    assert_eq!(store.user_stats().await.unwrap().total, 2);
}

pub async fn updating_a_missing_user_is_not_found(h: &mut Harness) {
    let result = h
        .store()
        .update_user(UserId::new(), &UserPatch::default())
        .await;
    assert_eq!(result, Err(StoreError::NotFound("user")));
}

pub async fn list_users_searches_and_pages(h: &mut Harness) {
    let store = h.store();
    for name in ["carol", "Alice", "bob", "dave", "alfred"] {
        store.create_user(&user(name)).await.unwrap();
    }
    let all = store
        .list_users(&UserQuery {
            limit: 50,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = all.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(
        names,
        ["alfred", "Alice", "bob", "carol", "dave"],
        "ordered ignoring case"
    );
    assert_eq!(all.total, 5);

    let page = store
        .list_users(&UserQuery {
            offset: 1,
            limit: 2,
            search: None,
        })
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["Alice", "bob"]);
    assert_eq!(page.total, 5);

    let found = store
        .list_users(&UserQuery {
            search: Some("AL".into()),
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    let names: Vec<_> = found.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alfred", "Alice"]);
    assert_eq!(found.total, 2);

    // Display names are searched too, and search text is literal (no pattern or operator injection).
    let by_display = store
        .list_users(&UserQuery {
            search: Some("dave DISPLAY".into()),
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(by_display.total, 1);
    let literal = store
        .list_users(&UserQuery {
            search: Some(".*".into()),
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(literal.total, 0);
}

pub async fn look_alike_usernames_are_found_by_skeleton(h: &mut Harness) {
    use app::domain::confusable::skeleton;
    let store = h.store();
    let admin = user("root_admin");
    store.create_user(&admin).await.unwrap();
    store.create_user(&user("mike")).await.unwrap();
    store.create_user(&user("ben")).await.unwrap();
    // A display name spelled with Cyrillic letters, or in other letter case, finds the account it
    // imitates; "rnike" looks like "mike".
    for disguise in ["r\u{043E}\u{043E}t_\u{0430}dmin", "ROOT_ADMIN"] {
        let found = store.users_named_like(&skeleton(disguise)).await.unwrap();
        assert_eq!(
            found.iter().map(|u| u.id).collect::<Vec<_>>(),
            [admin.id],
            "{disguise}"
        );
    }
    let found = store.users_named_like(&skeleton("rnike")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].username, "mike");
    assert!(store
        .users_named_like(&skeleton("someone else"))
        .await
        .unwrap()
        .is_empty());
    // Still found after a reopen (the index is stored, not rebuilt per process).
    h.reopen().await;
    let found = h
        .store()
        .users_named_like(&skeleton("root_admin"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

pub async fn two_factor_codes_are_used_once(h: &mut Harness) {
    let store = h.shared();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let enrolled = store
        .update_user(
            ana.id,
            &UserPatch {
                totp_secret: Some(Some("JBSWY3DPEHPK3PXP".into())),
                totp_pending: Some(None),
                recovery_hashes: Some(vec!["h1".into(), "h2".into()]),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(enrolled.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert!(enrolled.has_two_factor());
    // A step is accepted once; an earlier one never again; at once, one winner.
    assert!(store.use_totp_step(ana.id, 100).await.unwrap());
    assert!(!store.use_totp_step(ana.id, 100).await.unwrap());
    assert!(!store.use_totp_step(ana.id, 99).await.unwrap());
    let racing = futures::future::join_all((0..6).map(|_| {
        let store = store.clone();
        async move { store.use_totp_step(ana.id, 101).await.unwrap() }
    }))
    .await;
    assert_eq!(racing.iter().filter(|r| **r).count(), 1, "{racing:?}");
    // Recovery codes: each once, also when raced.
    let racing = futures::future::join_all((0..6).map(|_| {
        let store = store.clone();
        async move { store.use_recovery_code(ana.id, "h1").await.unwrap() }
    }))
    .await;
    assert_eq!(racing.iter().filter(|r| **r).count(), 1, "{racing:?}");
    assert!(!store.use_recovery_code(ana.id, "nope").await.unwrap());
    let now = store.user_by_id(ana.id).await.unwrap().unwrap();
    assert_eq!(now.recovery_hashes, ["h2"]);
    assert_eq!(now.totp_last_step, 101);
    // Turned off: the secret and the count of used steps go.
    let off = store
        .update_user(
            ana.id,
            &UserPatch {
                totp_secret: Some(None),
                recovery_hashes: Some(Vec::new()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(!off.has_two_factor());
    assert_eq!(off.totp_last_step, 0);
    assert!(
        !store.use_totp_step(UserId::new(), 5).await.unwrap(),
        "no such user"
    );
}
