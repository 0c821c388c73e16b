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
