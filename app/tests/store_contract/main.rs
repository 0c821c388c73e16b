//! The storage contract. Every test here runs once per driver: `embedded::*` on a fresh redb file in a
//! temporary directory, `mongo::*` on a private database of the MongoDB server named by `MONGODB_URI`
//! (`scripts/test.sh` starts a SecantusDB for it when the variable is unset).
//!
//! Run one driver with `cargo test -p app --features ssr --test store_contract embedded` (or `mongo`); that
//! filter also picks the few driver-specific tests, whose names start with the driver's.

// The store keeps what it is given: fixtures build names directly, the rules are `parse`'s business.
#![allow(clippy::disallowed_methods)]

mod changes;
mod durability;
mod files;
mod fixtures;
mod messages;
mod push;
mod read_markers_and_audit;
mod rooms;
mod search;
mod sessions;
mod threads;
mod users;

use app::store::*;
use changes::*;
use durability::*;
use files::*;
use fixtures::*;
use messages::*;
use push::*;
use read_markers_and_audit::*;
use rooms::*;
use search::*;
use sessions::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use threads::*;
use users::*;

// ---------------------------------------------------------------------------------------------------------
// Harness

pub enum Driver {
    Embedded {
        dir: tempfile::TempDir,
        store: Option<Arc<EmbeddedStore>>,
    },
    Mongo {
        uri: String,
        database: String,
        store: Arc<MongoStore>,
    },
}

pub struct Harness {
    pub driver: Driver,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Harness {
    pub async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path().to_path_buf())
            .await
            .expect("open embedded store");
        Self {
            driver: Driver::Embedded {
                dir,
                store: Some(Arc::new(store)),
            },
        }
    }

    pub async fn mongo(test: &str) -> Self {
        let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| {
            panic!(
                "MONGODB_URI is not set: the mongo:: contract tests need a MongoDB server. \
                 Run scripts/test.sh (it starts one) or set MONGODB_URI."
            )
        });
        // Unique per test and run, and within MongoDB's 63-character limit for database names.
        let short: String = test.chars().take(30).collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let database = format!("mlc_{short}_{}_{n}", std::process::id());
        let store = MongoStore::connect(&uri, &database)
            .await
            .expect("connect to MongoDB");
        Self {
            driver: Driver::Mongo {
                uri,
                database,
                store: Arc::new(store),
            },
        }
    }

    pub fn store(&self) -> &dyn Store {
        match &self.driver {
            Driver::Embedded { store, .. } => store.as_deref().expect("store is open"),
            Driver::Mongo { store, .. } => store.as_ref(),
        }
    }

    /// A shared handle, for spawned tasks.
    pub fn shared(&self) -> DynStore {
        match &self.driver {
            Driver::Embedded { store, .. } => store.clone().expect("store is open"),
            Driver::Mongo { store, .. } => store.clone(),
        }
    }

    /// Closes the store and opens it again on the same data.
    pub async fn reopen(&mut self) {
        match &mut self.driver {
            Driver::Embedded { dir, store } => {
                close(store.take()).await;
                let reopened = EmbeddedStore::open(dir.path().to_path_buf())
                    .await
                    .expect("reopen store");
                *store = Some(Arc::new(reopened));
            }
            Driver::Mongo {
                uri,
                database,
                store,
            } => {
                *store = Arc::new(MongoStore::connect(uri, database).await.expect("reconnect"));
            }
        }
    }

    pub async fn finish(self) {
        match self.driver {
            Driver::Embedded { store, dir } => {
                close(store).await;
                drop(dir);
            }
            Driver::Mongo { store, .. } => store.drop_database().await.expect("drop test database"),
        }
    }
}

async fn close(store: Option<Arc<EmbeddedStore>>) {
    if let Some(store) = store {
        let store = Arc::try_unwrap(store)
            .ok()
            .expect("no other handle to the store is alive");
        store.close().await;
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let mut h = super::Harness::embedded().await;
                    super::$name(&mut h).await;
                    h.finish().await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let mut h = super::Harness::mongo(stringify!($name)).await;
                    super::$name(&mut h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

contract!(
    reports_driver_and_answers_ping,
    users_crud,
    usernames_are_unique_ignoring_case,
    updating_a_missing_user_is_not_found,
    list_users_searches_and_pages,
    look_alike_usernames_are_found_by_skeleton,
    two_factor_codes_are_used_once,
    sessions_crud_and_revocation,
    refresh_rotation_detects_reuse,
    every_spent_token_of_a_chain_is_recognised,
    concurrent_rotations_of_one_token_have_one_winner,
    the_reuse_grace_is_claimed_once_per_rotation,
    expired_sessions_are_purged,
    rooms_crud_and_listing,
    direct_rooms_are_unique_per_pair,
    memberships,
    deleting_a_room_removes_everything_in_it,
    invitations_wait_for_the_invitee,
    messages_append_edit_delete,
    append_is_idempotent_per_room_author_nonce,
    history_pages_by_sequence,
    history_limit_is_clamped,
    concurrent_appends_get_gap_free_sequences,
    every_change_takes_the_rooms_next_revision,
    reactions_are_bounded_per_message,
    concurrent_changes_take_gap_free_revisions,
    mentions_are_listed_newest_first_and_counted_per_room,
    failed_writes_leave_concurrent_ones_intact,
    read_markers_only_move_forward,
    notify_levels_are_kept_per_person_and_room,
    replies_live_with_their_root_and_out_of_the_timeline,
    thread_followers_keep_what_they_read,
    concurrent_replies_keep_revisions_and_sequences_gap_free,
    search_finds_every_word_newest_first_in_the_rooms_given,
    search_by_a_prefix_of_many_words_finds_them_all,
    files_are_read_whole_and_in_ranges_and_deleted,
    push_subscriptions_are_kept_per_person_and_session,
    push_subscriptions_are_bounded_per_person_and_durable,
    the_file_quota_holds_under_concurrent_uploads,
    files_attach_to_a_message_and_the_rest_is_cleaned_up,
    a_message_shows_its_files_until_it_is_deleted,
    deleting_a_rooms_files_leaves_other_rooms_files,
    a_profile_picture_replaces_the_last_and_outlives_the_clean_up,
    search_sees_every_acknowledged_message_while_eight_write,
    audit_log_is_newest_first_and_filterable,
    data_survives_reopen,
);

/// MongoDB deployments run several stateless server instances on one database: sequences must stay
/// gap-free and nonces idempotent across separate connections (separate processes in production), not
/// only across tasks sharing one handle.
mod mongo_instances {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn separate_connections_share_gap_free_sequences_and_nonces() {
        const HANDLES: u64 = 4;
        const EACH: u64 = 40;
        let h = Harness::mongo("instances").await;
        let Driver::Mongo { uri, database, .. } = &h.driver else {
            unreachable!()
        };
        let (room_id, owner) = make_room(h.store(), "shared").await;
        let mut tasks = Vec::new();
        for handle in 0..HANDLES {
            let store = MongoStore::connect(uri, database)
                .await
                .expect("second connection");
            tasks.push(tokio::spawn(async move {
                let mut created = 0;
                for i in 0..EACH {
                    let msg = message(room_id, owner, &format!("h{handle}-{i}"), i as i64);
                    // Every send is retried once, as a client does after a lost ack.
                    let first = store.append_message(&msg).await.expect("append");
                    let retry = store.append_message(&msg).await.expect("retry");
                    assert_eq!(first.message, retry.message);
                    assert!(!retry.created);
                    created += u64::from(first.created);
                }
                created
            }));
        }
        let mut created = 0;
        for task in tasks {
            created += task.await.expect("appender");
        }
        assert_eq!(created, HANDLES * EACH);
        let seen = all_seqs_in(h.store(), room_id).await;
        assert_eq!(seen, (1..=HANDLES * EACH).collect::<Vec<_>>());
        h.finish().await;
    }

    /// Instances changing one message at once (reactions from everyone): none is lost, and the
    /// revisions they are given are gap-free across the instances.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn separate_connections_share_gap_free_revisions() {
        const HANDLES: usize = 4;
        const EACH: usize = 10;
        let h = Harness::mongo("instance_revs").await;
        let Driver::Mongo { uri, database, .. } = &h.driver else {
            unreachable!()
        };
        let (room_id, owner) = make_room(h.store(), "shared changes").await;
        let target = h
            .store()
            .append_message(&message(room_id, owner, "target", 1))
            .await
            .unwrap()
            .message
            .id;
        let mut tasks = Vec::new();
        for handle in 0..HANDLES {
            let store = MongoStore::connect(uri, database)
                .await
                .expect("second connection");
            tasks.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..EACH {
                    let change = MessageChange::React {
                        user: app::model::UserId::new(),
                        emoji: app::domain::Emoji::parse(app::domain::COMMON_EMOJI[handle].0)
                            .unwrap(),
                        on: true,
                    };
                    let changed = store.change_message(target, &change).await.expect("react");
                    assert!(changed.changed, "{handle}/{i}");
                    revs.push(changed.message.rev);
                }
                revs
            }));
        }
        let mut revs = vec![1];
        for task in tasks {
            revs.extend(task.await.expect("reactor"));
        }
        revs.sort_unstable();
        let n = (1 + HANDLES * EACH) as u64;
        assert_eq!(revs, (1..=n).collect::<Vec<_>>());
        let stored = h.store().message_by_id(target).await.unwrap().unwrap();
        assert_eq!(stored.rev, n);
        let reactions: usize = stored.reactions.iter().map(|r| r.users.len()).sum();
        assert_eq!(reactions, HANDLES * EACH, "no reaction lost");
        h.finish().await;
    }
}
