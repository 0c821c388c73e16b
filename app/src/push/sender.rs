//! Sending pushes. A new message queues one job (`Push::enqueue` never waits: a full queue drops the
//! job, so pushes can never slow message delivery); one task takes the jobs in order and, for every
//! member the message concerns who has no visible connection anywhere (presence is not online), sends
//! one encrypted push (RFC 8291, `aes128gcm`) to each of their subscriptions, signed with the VAPID
//! key. A push service's 404 or 410 means the subscription is gone: it is removed. So is one whose
//! session was signed out or ran out.
//!
//! Planning is per message, so it starts from what is in memory: the people with a subscription (kept
//! until the hub says the set changed on some instance) who are not online. A message none of them
//! can be woken for costs no store read at all.

use super::endpoint::{self, Reach, Resolver};
use super::vapid::VapidKeys;
use crate::chat::hub::Hub;
use crate::model::{MessageId, RoomId, RoomKind, Timestamp, UserId};
use crate::rate_limit::KeyedRateLimit;
use crate::store::{PushSubscriptionRecord, Store, StoreResult};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Jobs waiting to be sent; more are dropped (and logged).
const QUEUE: usize = 1024;
/// Pushes of one job in flight at once.
const IN_FLIGHT: usize = 16;
/// How long a push service may take to answer one push.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a push service keeps a push for a browser that is not reachable yet (`TTL`).
const PUSH_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Characters of the message shown in the notification (push payloads are limited to 4 KiB).
const PREVIEW_CHARS: usize = 240;
/// Up to this many people with a subscription, the planner starts from them (their presence in memory,
/// then the memberships of those away); with more, from the room's member list.
const SUBSCRIBERS_SCANNED: usize = 512;
/// Up to this many subscribers away, their memberships are looked up one by one; with more, the room's
/// member list is read once instead.
const MEMBERSHIP_LOOKUPS: usize = 32;
/// Subscribing and unsubscribing, per person.
const CHANGES_BURST: u32 = 20;
const CHANGES_PERIOD: Duration = Duration::from_secs(10 * 60);

/// A new message, as much of it as a notification needs.
#[derive(Debug, Clone)]
pub struct PushJob {
    pub room: RoomId,
    pub message: MessageId,
    pub seq: u64,
    /// The thread's root, for a reply shown only in its thread.
    pub thread_only: Option<MessageId>,
    pub author: UserId,
    pub author_name: String,
    pub text: String,
    pub has_files: bool,
    pub mentions: Vec<UserId>,
}

/// What the service worker receives (decrypted) and shows.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PushPayload {
    pub title: String,
    pub body: String,
    /// The page that shows the message.
    pub url: String,
    /// Notifications of one room replace each other instead of piling up.
    pub tag: String,
    pub room: RoomId,
    pub message: MessageId,
}

pub struct Push {
    keys: Arc<VapidKeys>,
    reach: Reach,
    queue: mpsc::Sender<PushJob>,
    waiting: Mutex<Option<mpsc::Receiver<PushJob>>>,
    /// Jobs dropped because the queue was full (logged at the first and every thousandth).
    dropped: AtomicU64,
    /// Subscribing and unsubscribing, per person.
    pub changes: KeyedRateLimit<UserId>,
}

impl Push {
    pub fn new(keys: VapidKeys, reach: Reach) -> Arc<Self> {
        let (queue, waiting) = mpsc::channel(QUEUE);
        Arc::new(Self {
            keys: Arc::new(keys),
            reach,
            queue,
            waiting: Mutex::new(Some(waiting)),
            dropped: AtomicU64::new(0),
            changes: KeyedRateLimit::new(CHANGES_BURST, CHANGES_PERIOD),
        })
    }

    pub fn public_key(&self) -> &str {
        self.keys.public_key()
    }

    pub fn reach(&self) -> Reach {
        self.reach
    }

    /// Queues pushes for a new message; never waits.
    pub fn enqueue(&self, job: PushJob) {
        if let Err(mpsc::error::TrySendError::Full(job)) = self.queue.try_send(job) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped % 1000 == 1 {
                tracing::warn!(room = %job.room, dropped, "the push queue is full; pushes of new messages are dropped");
            }
        }
    }

    /// Starts the task that sends what is queued (once; later calls do nothing). It holds the store
    /// only while it reads from it, so a stopping server releases the store at once.
    pub fn start(&self, store: Weak<dyn Store>, hub: Arc<Hub>) -> Result<(), String> {
        let Some(mut jobs) = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Ok(());
        };
        let client = reqwest::Client::builder()
            // A redirect would be a request to an address nobody checked.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT / 2)
            .dns_resolver(Arc::new(Resolver { reach: self.reach }))
            .build()
            .map_err(|e| format!("the push client: {e}"))?;
        let sender = Sender {
            client,
            keys: self.keys.clone(),
            reach: self.reach,
            hub,
            subscribers: Mutex::new(None),
        };
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                if store.strong_count() == 0 {
                    break;
                }
                sender.deliver(&store, &job).await;
            }
        });
        Ok(())
    }
}

struct Sender {
    client: reqwest::Client,
    keys: Arc<VapidKeys>,
    reach: Reach,
    hub: Arc<Hub>,
    /// Who has a subscription, as of a generation of the hub's push subscriber set.
    subscribers: Mutex<Option<(u64, Arc<HashSet<UserId>>)>>,
}

/// One push to send: where, with what urgency.
struct Outgoing {
    subscription: PushSubscriptionRecord,
    urgent: bool,
}

enum Sent {
    Delivered,
    /// The subscription is gone (404/410): forget it.
    Gone,
    Failed(String),
}

impl Sender {
    async fn deliver(&self, store: &Weak<dyn Store>, job: &PushJob) {
        let Some(held) = store.upgrade() else { return };
        let planned = self.plan(&*held, job).await;
        drop(held);
        let (payload, pushes) = match planned {
            Ok(Some(planned)) => planned,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, room = %job.room, "pushes for a message could not be planned");
                return;
            }
        };
        let payload = match serde_json::to_vec(&payload) {
            Ok(bytes) => bytes,
            Err(error) => return tracing::warn!(%error, "a push payload could not be encoded"),
        };
        let results: Vec<(String, Sent)> = futures::stream::iter(pushes)
            .map(|push| {
                let payload = payload.clone();
                async move {
                    let sent = self.send(&push, payload).await;
                    (push.subscription.endpoint, sent)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (endpoint, sent) in results {
            match sent {
                Sent::Delivered => {}
                Sent::Gone => {
                    if let Some(held) = store.upgrade() {
                        if let Err(error) = held.delete_push_subscription(&endpoint).await {
                            tracing::warn!(%error, "a gone push subscription could not be removed");
                        }
                    }
                }
                Sent::Failed(error) => tracing::info!(%error, "a push was not accepted"),
            }
        }
    }

    /// The payload and the pushes a message calls for, or `None` if nobody is to be woken.
    async fn plan(
        &self,
        store: &dyn Store,
        job: &PushJob,
    ) -> StoreResult<Option<(PushPayload, Vec<Outgoing>)>> {
        let subscribers = self.subscribers(store).await?;
        let recipients = recipients(store, &self.hub, &subscribers, job).await?;
        if recipients.is_empty() {
            return Ok(None);
        }
        let Some(room) = store.room_by_id(job.room).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let mut pushes = Vec::new();
        for user in recipients {
            let subscriptions = store.push_subscriptions_of(user).await?;
            if subscriptions.is_empty() {
                continue;
            }
            let mentioned = job.mentions.contains(&user);
            if !store
                .notify_level(user, job.room)
                .await?
                .notifies(mentioned)
            {
                continue;
            }
            for subscription in subscriptions {
                let live = store
                    .session_by_id(subscription.session_id)
                    .await?
                    .is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now);
                if !live {
                    store
                        .delete_push_subscription(&subscription.endpoint)
                        .await?;
                    continue;
                }
                pushes.push(Outgoing {
                    subscription,
                    urgent: mentioned || room.kind == RoomKind::Direct,
                });
            }
        }
        if pushes.is_empty() {
            return Ok(None);
        }
        let direct = room.kind == RoomKind::Direct;
        Ok(Some((payload(job, room.name.as_str(), direct), pushes)))
    }

    /// Who has a subscription: read again only when the hub's generation moved since the last read.
    async fn subscribers(&self, store: &dyn Store) -> StoreResult<Arc<HashSet<UserId>>> {
        // Read before the store, so that a change landing during the read is seen at the next look.
        let generation = self.hub.push_subscribers_generation();
        if let Some((seen, users)) = &*self.subscribers.lock().unwrap_or_else(|e| e.into_inner()) {
            if *seen == generation {
                return Ok(users.clone());
            }
        }
        let users: Arc<HashSet<UserId>> =
            Arc::new(store.push_subscribers().await?.into_iter().collect());
        *self.subscribers.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, users.clone()));
        Ok(users)
    }

    async fn send(&self, push: &Outgoing, payload: Vec<u8>) -> Sent {
        match self.try_send(push, payload).await {
            Ok(sent) => sent,
            Err(error) => Sent::Failed(error),
        }
    }

    async fn try_send(&self, push: &Outgoing, payload: Vec<u8>) -> Result<Sent, String> {
        let subscription = &push.subscription;
        let uri =
            endpoint::checked(&subscription.endpoint, self.reach).map_err(|e| e.to_string())?;
        let public = p256::PublicKey::from_sec1_bytes(&subscription.p256dh)
            .map_err(|_| "the subscription's key is not a P-256 point".to_owned())?;
        if subscription.auth.len() != 16 {
            return Err("the subscription's secret is not 16 bytes".to_owned());
        }
        let auth = web_push_native::Auth::clone_from_slice(&subscription.auth);
        let request = web_push_native::WebPushBuilder::new(uri.clone(), public, auth)
            .with_valid_duration(PUSH_TTL)
            .build(payload)
            .map_err(|e| format!("encrypting the push: {e}"))?;
        let now = u64::try_from(Timestamp::now().millis() / 1000).unwrap_or(0);
        let authorization = self.keys.authorization(&uri, now)?;
        let (parts, body) = request.into_parts();
        let answer = self
            .client
            .post(uri.to_string())
            .headers(parts.headers)
            .header(http::header::AUTHORIZATION, authorization)
            .header("Urgency", if push.urgent { "high" } else { "normal" })
            .body(body)
            .send()
            .await
            .map_err(|e| format!("sending the push: {e}"))?;
        Ok(match answer.status().as_u16() {
            200..=299 => Sent::Delivered,
            404 | 410 => Sent::Gone,
            status => Sent::Failed(format!("the push service answered {status}")),
        })
    }
}

/// The members of `job`'s room, other than its author, who are in `subscribers` and not online
/// (someone looking at the app has the message already).
async fn recipients(
    store: &dyn Store,
    hub: &Hub,
    subscribers: &HashSet<UserId>,
    job: &PushJob,
) -> StoreResult<Vec<UserId>> {
    let wanted = |user: &UserId| *user != job.author && subscribers.contains(user);
    if subscribers.len() > SUBSCRIBERS_SCANNED {
        // Many subscribers: start from the room's members instead.
        let members = store.list_members(job.room).await?;
        return Ok(hub.not_online(members.into_iter().map(|m| m.user_id).filter(wanted)));
    }
    let away = hub.not_online(subscribers.iter().copied().filter(wanted));
    if away.len() > MEMBERSHIP_LOOKUPS {
        let away: HashSet<UserId> = away.into_iter().collect();
        let members = store.list_members(job.room).await?;
        return Ok(members
            .into_iter()
            .map(|m| m.user_id)
            .filter(|user| away.contains(user))
            .collect());
    }
    let mut members = Vec::with_capacity(away.len());
    for user in away {
        if store.membership(job.room, user).await?.is_some() {
            members.push(user);
        }
    }
    Ok(members)
}

/// The notification for `job`: the room (or, for a direct message, its author) as the title, who
/// said what as the body, and the page that shows it.
pub fn payload(job: &PushJob, room_name: &str, direct: bool) -> PushPayload {
    let mut text: String = job.text.chars().take(PREVIEW_CHARS).collect();
    if text.len() < job.text.len() {
        text.push('…');
    }
    if text.trim().is_empty() && job.has_files {
        text = "sent a file".to_owned();
    }
    let (title, body) = if direct {
        (job.author_name.clone(), text)
    } else {
        (
            format!("#{room_name}"),
            format!("{}: {text}", job.author_name),
        )
    };
    let url = match job.thread_only {
        Some(root) => format!("/rooms/{}?thread={root}", job.room),
        None => format!("/rooms/{}?at={}", job.room, job.seq),
    };
    PushPayload {
        title,
        body,
        url,
        tag: format!("room-{}", job.room),
        room: job.room,
        message: job.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> PushJob {
        PushJob {
            room: RoomId::new(),
            message: MessageId::new(),
            seq: 42,
            thread_only: None,
            author: UserId::new(),
            author_name: "Ana".to_owned(),
            text: text.to_owned(),
            has_files: false,
            mentions: Vec::new(),
        }
    }

    #[test]
    fn a_notification_names_the_room_the_author_and_opens_the_message() {
        let j = job("lunch at noon?");
        let p = payload(&j, "general", false);
        assert_eq!(p.title, "#general");
        assert_eq!(p.body, "Ana: lunch at noon?");
        assert_eq!(p.url, format!("/rooms/{}?at=42", j.room));
        let dm = payload(&j, "ignored", true);
        assert_eq!(
            (dm.title.as_str(), dm.body.as_str()),
            ("Ana", "lunch at noon?")
        );
        let root = MessageId::new();
        let reply = PushJob {
            thread_only: Some(root),
            ..job("in the thread")
        };
        assert_eq!(
            payload(&reply, "g", false).url,
            format!("/rooms/{}?thread={root}", reply.room)
        );
    }

    /// One room: the author, a member looking at the app, one without a subscription and 40 away;
    /// whichever way the planner finds them (memberships one by one, the member list for many away,
    /// the member list for many subscribers), it is the subscribed members who are away.
    #[tokio::test]
    async fn pushes_are_planned_for_subscribed_members_who_are_away() {
        use crate::domain::{RoomName, RoomTopic};
        use crate::model::{MemberRole, SessionId};
        use crate::store::{MembershipRecord, RoomRecord};
        let (state, _dir) = crate::state::testing::state().await;
        let (author, looking, unsubscribed) = (UserId::new(), UserId::new(), UserId::new());
        let away: Vec<UserId> = (0..40).map(|_| UserId::new()).collect();
        let room = RoomRecord {
            id: RoomId::new(),
            kind: RoomKind::Public,
            name: RoomName::parse("Lobby").unwrap(),
            topic: RoomTopic::default(),
            created_by: author,
            created_at: Timestamp::now(),
            archived: false,
            direct_key: None,
        };
        let members: Vec<MembershipRecord> = [author, looking, unsubscribed]
            .iter()
            .chain(&away)
            .map(|&user_id| MembershipRecord {
                room_id: room.id,
                user_id,
                role: MemberRole::Member,
                joined_at: Timestamp::now(),
            })
            .collect();
        state.store.create_room(&room, &members).await.unwrap();
        let _open = state.hub.register(looking, SessionId::new(), &[room.id]);
        let job = PushJob {
            room: room.id,
            author,
            ..job("hello")
        };
        for (subscribed_away, strangers) in [(3, 0), (40, 0), (40, 600)] {
            let subscribers: HashSet<UserId> = [author, looking]
                .into_iter()
                .chain(away[..subscribed_away].iter().copied())
                .chain((0..strangers).map(|_| UserId::new()))
                .collect();
            let mut found = recipients(&*state.store, &state.hub, &subscribers, &job)
                .await
                .unwrap();
            found.sort();
            let mut expected = away[..subscribed_away].to_vec();
            expected.sort();
            assert_eq!(
                found, expected,
                "{subscribed_away} away, {strangers} strangers"
            );
        }
    }

    #[test]
    fn long_messages_are_cut_and_files_are_named() {
        let long = "é".repeat(PREVIEW_CHARS * 3);
        let p = payload(&job(&long), "g", true);
        assert_eq!(p.body.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.body.ends_with('…'));
        // Well inside what push services carry (4 KiB, encryption included).
        assert!(serde_json::to_vec(&p).unwrap().len() < 3000);
        let file = PushJob {
            has_files: true,
            ..job("")
        };
        assert_eq!(payload(&file, "g", true).body, "sent a file");
    }
}
