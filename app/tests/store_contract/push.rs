//! Push subscriptions: saved and replaced by endpoint, listed per person, bounded per person, and
//! removed one by one or with the session that made them (also when the store is reopened).

use crate::Harness;
use app::model::*;
use app::store::*;

fn subscription(
    user: UserId,
    session: SessionId,
    endpoint: &str,
    at: i64,
) -> PushSubscriptionRecord {
    PushSubscriptionRecord {
        endpoint: endpoint.to_owned(),
        user_id: user,
        session_id: session,
        p256dh: (0..65u8).collect(),
        auth: (100..116u8).collect(),
        created_at: Timestamp(at),
    }
}

const MAX: usize = 3;

async fn subscribers(h: &Harness) -> std::collections::BTreeSet<UserId> {
    let listed = h.store().push_subscribers().await.unwrap();
    let once: std::collections::BTreeSet<UserId> = listed.iter().copied().collect();
    assert_eq!(once.len(), listed.len(), "each subscriber once: {listed:?}");
    once
}

pub async fn push_subscriptions_are_kept_per_person_and_session(h: &mut Harness) {
    let (ana, ben) = (UserId::new(), UserId::new());
    let (phone, laptop, bens) = (SessionId::new(), SessionId::new(), SessionId::new());
    let store = h.store();
    let a1 = subscription(ana, phone, "https://push.example/a1", 1_000);
    let a2 = subscription(ana, laptop, "https://push.example/a2", 2_000);
    let b1 = subscription(ben, bens, "https://push.example/b1", 1_500);
    for s in [&a2, &a1, &b1] {
        store.save_push_subscription(s, MAX).await.unwrap();
    }
    assert_eq!(
        store.push_subscriptions_of(ana).await.unwrap(),
        vec![a1.clone(), a2.clone()]
    );
    assert_eq!(
        store.push_subscriptions_of(ben).await.unwrap(),
        vec![b1.clone()]
    );
    assert_eq!(subscribers(h).await, [ana, ben].into());

    // The browser of a1 subscribes again, now signed in as Ben: the endpoint moves to him.
    let moved = PushSubscriptionRecord {
        p256dh: vec![4; 65],
        ..subscription(ben, bens, &a1.endpoint, 3_000)
    };
    store.save_push_subscription(&moved, MAX).await.unwrap();
    assert_eq!(
        store.push_subscriptions_of(ana).await.unwrap(),
        vec![a2.clone()]
    );
    assert_eq!(
        store.push_subscriptions_of(ben).await.unwrap(),
        vec![b1.clone(), moved.clone()]
    );

    // Signing out Ben's session takes both of his away; Ana's stay.
    assert_eq!(
        store
            .delete_push_subscriptions_of_session(bens)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .delete_push_subscriptions_of_session(bens)
            .await
            .unwrap(),
        0
    );
    assert!(store.push_subscriptions_of(ben).await.unwrap().is_empty());
    assert_eq!(subscribers(h).await, [ana].into());
    assert!(store.delete_push_subscription(&a2.endpoint).await.unwrap());
    assert!(!store.delete_push_subscription(&a2.endpoint).await.unwrap());
    assert!(store.push_subscriptions_of(ana).await.unwrap().is_empty());
    assert!(subscribers(h).await.is_empty());
}

pub async fn push_subscriptions_are_bounded_per_person_and_durable(h: &mut Harness) {
    let ana = UserId::new();
    let session = SessionId::new();
    let endpoints: Vec<String> = (0..MAX)
        .map(|i| format!("https://push.example/{i}"))
        .collect();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let s = subscription(ana, session, endpoint, 1_000 + i as i64);
        h.store().save_push_subscription(&s, MAX).await.unwrap();
    }
    let one_more = subscription(ana, session, "https://push.example/more", 9_000);
    assert!(matches!(
        h.store().save_push_subscription(&one_more, MAX).await,
        Err(StoreError::Limit(_))
    ));
    // Saving one of those again replaces it, within the bound.
    let again = subscription(ana, session, &endpoints[0], 500);
    h.store().save_push_subscription(&again, MAX).await.unwrap();
    h.reopen().await;
    let kept = h.store().push_subscriptions_of(ana).await.unwrap();
    assert_eq!(
        kept.iter().map(|s| s.endpoint.as_str()).collect::<Vec<_>>(),
        endpoints.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(kept[0].created_at, Timestamp(500));
}
