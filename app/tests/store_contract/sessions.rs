//! Sessions: creation, revocation, refresh-token rotation and reuse detection, purging.

use crate::fixtures::*;
use crate::Harness;
use app::model::*;
use app::store::*;

pub async fn sessions_crud_and_revocation(h: &mut Harness) {
    let store = h.store();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let s1 = session(ana.id, "hash-1", 3_000, 100_000);
    let s2 = session(ana.id, "hash-2", 5_000, 100_000);
    let s3 = session(ana.id, "hash-3", 4_000, 100_000);
    let old = session(ana.id, "hash-old", 1_000, 2_000);
    for s in [&s1, &s2, &s3, &old] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store.create_session(&session(ana.id, "hash-1", 1, 2)).await,
        Err(StoreError::Duplicate("session")),
        "a refresh hash is unique"
    );
    assert_eq!(store.session_by_id(s1.id).await.unwrap(), Some(s1.clone()));
    assert_eq!(store.session_by_id(SessionId::new()).await.unwrap(), None);

    let live = store
        .list_user_sessions(ana.id, Timestamp(10_000))
        .await
        .unwrap();
    let ids: Vec<_> = live.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        [s2.id, s3.id, s1.id],
        "live sessions, most recently used first"
    );

    store.revoke_session(s3.id, Timestamp(6_000)).await.unwrap();
    store.revoke_session(s3.id, Timestamp(7_000)).await.unwrap();
    let revoked = store.session_by_id(s3.id).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(Timestamp(6_000)),
        "first revocation time is kept"
    );
    assert_eq!(
        store.revoke_session(SessionId::new(), Timestamp(1)).await,
        Err(StoreError::NotFound("session"))
    );

    let other = user("bob");
    store.create_user(&other).await.unwrap();
    let bob_session = session(other.id, "hash-bob", 1_000, 100_000);
    store.create_session(&bob_session).await.unwrap();

    // "Log out everywhere else": s1 stays, s2 goes; s3 was already revoked, `old` expired but not revoked.
    let count = store
        .revoke_user_sessions(ana.id, Some(s1.id), Timestamp(8_000))
        .await
        .unwrap();
    assert_eq!(count, 2);
    let live = store
        .list_user_sessions(ana.id, Timestamp(10_000))
        .await
        .unwrap();
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), [s1.id]);
    let bob_live = store
        .list_user_sessions(other.id, Timestamp(10_000))
        .await
        .unwrap();
    assert_eq!(bob_live.len(), 1, "other users' sessions are untouched");

    assert_eq!(
        store
            .revoke_user_sessions(ana.id, None, Timestamp(9_000))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .list_user_sessions(ana.id, Timestamp(10_000))
        .await
        .unwrap()
        .is_empty());
}

pub async fn refresh_rotation_detects_reuse(h: &mut Harness) {
    let store = h.store();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let s = session(ana.id, "token-a", 1_000, 50_000);
    store.create_session(&s).await.unwrap();

    assert_eq!(
        store.find_refresh("token-a").await.unwrap(),
        Some(RefreshLookup::Current(s.clone()))
    );
    assert_eq!(store.find_refresh("unknown").await.unwrap(), None);

    let rotated = store
        .rotate_refresh(
            s.id,
            "token-a",
            "token-b",
            Timestamp(2_000),
            Timestamp(60_000),
        )
        .await
        .unwrap();
    assert!(rotated);
    let Some(RefreshLookup::Current(now)) = store.find_refresh("token-b").await.unwrap() else {
        panic!("the new token is current");
    };
    assert_eq!(now.id, s.id, "rotation keeps the family");
    assert_eq!(now.last_used_at, Timestamp(2_000));
    assert_eq!(now.expires_at, Timestamp(60_000));
    let Some(RefreshLookup::Spent(spent)) = store.find_refresh("token-a").await.unwrap() else {
        panic!("the old token is spent");
    };
    assert_eq!(spent.id, s.id);

    // A second rotation from the spent token loses the compare-and-swap.
    let again = store
        .rotate_refresh(
            s.id,
            "token-a",
            "token-c",
            Timestamp(3_000),
            Timestamp(70_000),
        )
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(store.find_refresh("token-c").await.unwrap(), None);

    // After revocation even the current token cannot rotate.
    store.revoke_session(s.id, Timestamp(4_000)).await.unwrap();
    let after_revoke = store
        .rotate_refresh(
            s.id,
            "token-b",
            "token-d",
            Timestamp(5_000),
            Timestamp(80_000),
        )
        .await
        .unwrap();
    assert!(!after_revoke);
}

/// Reuse detection must recognise any token the session ever rotated away from, not only the last one,
/// and report the session's revocation so a revoked family stays dead.
pub async fn every_spent_token_of_a_chain_is_recognised(h: &mut Harness) {
    let store = h.store();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let s = session(ana.id, "chain-0", 1_000, 50_000);
    store.create_session(&s).await.unwrap();
    for i in 0..5 {
        let (old, new) = (format!("chain-{i}"), format!("chain-{}", i + 1));
        let at = Timestamp(2_000 + i);
        assert!(store
            .rotate_refresh(s.id, &old, &new, at, Timestamp(60_000))
            .await
            .unwrap());
    }
    for i in 0..5 {
        match store.find_refresh(&format!("chain-{i}")).await.unwrap() {
            Some(RefreshLookup::Spent(found)) => assert_eq!(found.id, s.id),
            other => panic!("chain-{i} should be spent, got {other:?}"),
        }
    }
    store.revoke_session(s.id, Timestamp(9_000)).await.unwrap();
    match store.find_refresh("chain-5").await.unwrap() {
        Some(RefreshLookup::Current(found)) => {
            assert_eq!(found.revoked_at, Some(Timestamp(9_000)))
        }
        other => panic!("chain-5 is the last token, got {other:?}"),
    }
    match store.find_refresh("chain-2").await.unwrap() {
        Some(RefreshLookup::Spent(found)) => assert_eq!(found.revoked_at, Some(Timestamp(9_000))),
        other => panic!("chain-2 should be spent, got {other:?}"),
    }
}

/// Two refreshes racing with the same token: exactly one rotation happens.
pub async fn concurrent_rotations_of_one_token_have_one_winner(h: &mut Harness) {
    let store = h.store();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let s = session(ana.id, "race-0", 1_000, 50_000);
    store.create_session(&s).await.unwrap();
    let shared = h.shared();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = shared.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh(
                        s.id,
                        "race-0",
                        &format!("race-winner-{i}"),
                        Timestamp(2_000),
                        Timestamp(60_000),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1, "exactly one rotation wins");
    let mut current = 0;
    for i in 0..8 {
        if let Some(RefreshLookup::Current(_)) = store
            .find_refresh(&format!("race-winner-{i}"))
            .await
            .unwrap()
        {
            current += 1;
        }
    }
    assert_eq!(current, 1);
}

pub async fn expired_sessions_are_purged(h: &mut Harness) {
    let store = h.store();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let expired = session(ana.id, "exp-1", 1_000, 2_000);
    let live = session(ana.id, "live-1", 1_000, 900_000);
    store.create_session(&expired).await.unwrap();
    store.create_session(&live).await.unwrap();
    store
        .rotate_refresh(
            expired.id,
            "exp-1",
            "exp-2",
            Timestamp(1_500),
            Timestamp(2_000),
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .purge_expired_sessions(Timestamp(10_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.session_by_id(expired.id).await.unwrap(), None);
    assert_eq!(
        store.find_refresh("exp-1").await.unwrap(),
        None,
        "spent hashes go too"
    );
    assert_eq!(store.find_refresh("exp-2").await.unwrap(), None);
    assert!(store.session_by_id(live.id).await.unwrap().is_some());
}

pub async fn the_reuse_grace_is_claimed_once_per_rotation(h: &mut Harness) {
    let store = h.shared();
    let ana = user("ana");
    store.create_user(&ana).await.unwrap();
    let s = session(ana.id, "token-a", 1_000, 50_000);
    store.create_session(&s).await.unwrap();
    assert!(store
        .rotate_refresh(
            s.id,
            "token-a",
            "token-b",
            Timestamp(2_000),
            Timestamp(60_000)
        )
        .await
        .unwrap());
    // Many at once: one gets it.
    let claims: Vec<bool> = futures::future::join_all((0..8).map(|_| {
        let store = store.clone();
        async move { store.claim_reuse_grace(s.id, "token-b").await.unwrap() }
    }))
    .await;
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{claims:?}");
    assert!(!store.claim_reuse_grace(s.id, "token-b").await.unwrap());
    // Not for a token that is not the current one.
    assert!(!store.claim_reuse_grace(s.id, "token-a").await.unwrap());
    // The next rotation brings a fresh grace; a revoked session has none.
    assert!(store
        .rotate_refresh(
            s.id,
            "token-b",
            "token-c",
            Timestamp(3_000),
            Timestamp(60_000)
        )
        .await
        .unwrap());
    let Some(RefreshLookup::Current(now)) = store.find_refresh("token-c").await.unwrap() else {
        panic!("token-c is current");
    };
    assert!(!now.grace_claimed);
    store.revoke_session(s.id, Timestamp(3_500)).await.unwrap();
    assert!(!store.claim_reuse_grace(s.id, "token-c").await.unwrap());
}
