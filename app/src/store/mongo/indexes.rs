//! Every index the driver relies on, created at start-up (creating an existing index is a no-op). Unique
//! indexes carry the invariants (one account per username, gap-free sequences, one message per nonce),
//! so their names matter: a duplicate-key error names the index that clashed.

use super::errors::describe;
use super::MongoStore;
use crate::store::{StoreError, StoreResult};
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::time::Duration;

// Index names matter: duplicate-key errors name the index that clashed.
pub(super) const USERNAME_INDEX: &str = "username_key_unique";

pub(super) const DIRECT_KEY_INDEX: &str = "direct_key_unique";

pub(super) const SEQ_INDEX: &str = "room_seq_unique";

/// No two messages of a room ever took the same revision (`revs` holds every one a message took).
pub(super) const REV_INDEX: &str = "room_revs_unique";

pub(super) const NONCE_INDEX: &str = "room_author_nonce_unique";

impl MongoStore {
    pub(super) async fn create_indexes(&self) -> StoreResult<()> {
        let ttl = |name: &str| {
            IndexModel::builder()
                .keys(doc! { "purge_at": 1 })
                .options(
                    IndexOptions::builder()
                        .name(name.to_string())
                        .expire_after(Duration::ZERO)
                        .build(),
                )
                .build()
        };
        let direct_key = IndexModel::builder()
            .keys(doc! { "direct_key": 1 })
            .options(
                IndexOptions::builder()
                    .name(DIRECT_KEY_INDEX.to_string())
                    .unique(true)
                    // Only direct rooms carry a key; other rooms must not clash on a missing one.
                    .partial_filter_expression(doc! { "direct_key": { "$type": "string" } })
                    .build(),
            )
            .build();
        // Documents from before revisions have none, and must not clash on the missing field.
        let revs = IndexModel::builder()
            .keys(doc! { "room_id": 1, "revs": 1 })
            .options(
                IndexOptions::builder()
                    .name(REV_INDEX.to_string())
                    .unique(true)
                    .partial_filter_expression(doc! { "revs": { "$exists": true } })
                    .build(),
            )
            .build();
        // Only replies carry a thread.
        let thread_replies = IndexModel::builder()
            .keys(doc! { "thread": 1, "at_rev": 1 })
            .options(
                IndexOptions::builder()
                    .name("thread_replies".to_string())
                    .partial_filter_expression(doc! { "thread": { "$exists": true } })
                    .build(),
            )
            .build();
        let plan = [
            (
                &self.users,
                vec![
                    unique(doc! { "username_key": 1 }, USERNAME_INDEX),
                    index(doc! { "username_skeleton": 1 }, "username_skeleton"),
                ],
            ),
            (
                &self.sessions,
                vec![
                    unique(doc! { "refresh_hash": 1 }, "refresh_hash_unique"),
                    index(doc! { "user_id": 1, "last_used_at": -1 }, "user_last_used"),
                    index(doc! { "expires_at": 1 }, "expires_at"),
                    ttl("session_ttl"),
                ],
            ),
            (
                &self.spent_tokens,
                vec![
                    index(doc! { "session_id": 1 }, "session_id"),
                    ttl("spent_token_ttl"),
                ],
            ),
            (
                &self.rooms,
                vec![
                    direct_key,
                    index(doc! { "name_key": 1, "_id": 1 }, "name_order"),
                ],
            ),
            (
                &self.memberships,
                vec![
                    unique(doc! { "room_id": 1, "user_id": 1 }, "room_user_unique"),
                    index(doc! { "user_id": 1 }, "user_id"),
                    index(doc! { "room_id": 1, "joined_at": 1 }, "room_joined"),
                ],
            ),
            (
                &self.invitations,
                vec![
                    unique(doc! { "room_id": 1, "user_id": 1 }, "invitation_unique"),
                    index(doc! { "user_id": 1, "at": 1 }, "user_at"),
                ],
            ),
            (
                &self.messages,
                vec![
                    unique(doc! { "room_id": 1, "seq": 1 }, SEQ_INDEX),
                    revs,
                    // The change feed, and the room's latest revision.
                    index(doc! { "room_id": 1, "rev": 1 }, "room_rev"),
                    // Someone's mentions, newest first; and per room, for unread counts.
                    index(
                        doc! { "mentions": 1, "created_at": -1, "_id": -1 },
                        "mentions_newest",
                    ),
                    index(
                        doc! { "mentions": 1, "room_id": 1, "seq": 1 },
                        "mentions_by_room",
                    ),
                    unique(
                        doc! { "room_id": 1, "author_id": 1, "nonce": 1 },
                        NONCE_INDEX,
                    ),
                    index(doc! { "created_at": 1 }, "created_at"),
                    thread_replies,
                    // Search (see `search`).
                    index(
                        doc! { "room_id": 1, "terms": 1, "created_at": -1 },
                        "room_terms",
                    ),
                ],
            ),
            (
                &self.thread_follows,
                vec![
                    index(doc! { "user_id": 1, "followed_at": -1 }, "user_followed"),
                    index(doc! { "room_id": 1 }, "room_id"),
                ],
            ),
            (
                &self.files,
                vec![
                    index(doc! { "message_id": 1, "created_at": 1 }, "message_created"),
                    index(doc! { "blob_id": 1 }, "blob_id"),
                    index(doc! { "thumb_blob_id": 1 }, "thumb_blob_id"),
                ],
            ),
            (
                &self.push_subscriptions,
                vec![
                    index(doc! { "user_id": 1, "created_at": 1 }, "user_created"),
                    index(doc! { "session_id": 1 }, "session_id"),
                ],
            ),
            (
                &self.read_markers,
                vec![
                    unique(doc! { "user_id": 1, "room_id": 1 }, "user_room_unique"),
                    index(doc! { "room_id": 1 }, "room_id"),
                ],
            ),
            (
                &self.audit,
                vec![
                    index(doc! { "at": -1, "_id": -1 }, "newest_first"),
                    index(doc! { "actor_key": 1, "at": -1 }, "actor_at"),
                    index(doc! { "action": 1, "at": -1 }, "action_at"),
                ],
            ),
        ];
        for (collection, models) in plan {
            collection.create_indexes(models).await.map_err(|e| {
                StoreError::Unavailable(format!(
                    "creating indexes on {}: {}",
                    collection.name(),
                    describe(&e)
                ))
            })?;
        }
        Ok(())
    }
}

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_string()).build())
        .build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(name.to_string())
                .unique(true)
                .build(),
        )
        .build()
}
