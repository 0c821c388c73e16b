//! The storage interface: one repository trait per aggregate, written in the app's own terms, and two
//! drivers behind it: `embedded` (redb, the zero-setup default) and `mongo` (MongoDB, for deployments that
//! grow past one machine). Both pass the contract suite in `app/tests/store_contract.rs`.
//!
//! Record types here are the storage model (they carry password hashes and token hashes); they never go to
//! the browser as they are. Drivers keep their own row types and convert at the edge, so no `bson` or
//! `redb` type escapes this module.

mod bus;
mod embedded;
mod files;
mod messages;
mod mongo;
mod push;
mod search;
mod threads;

use crate::domain::{DisplayName, RoomName, RoomTopic, Username};
use crate::model::{
    AuditId, FileId, MemberRole, NotifyLevel, Role, RoomId, RoomKind, SessionId, Timestamp, UserId,
};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

pub use bus::{BusConnection, BusDelivery, EventBus};
pub use embedded::{EmbeddedStore, DB_FILE};
pub use files::*;
pub use messages::*;
pub use mongo::MongoStore;
pub use push::*;
pub use search::*;
pub use threads::*;

/// The largest page any listing returns, whatever the caller asks for.
pub const MAX_PAGE_SIZE: u32 = 200;

/// Errors in domain terms. Driver errors are mapped into these at the driver's edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (username, direct-room pair, membership, ...).
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// The record to change does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The store cannot be reached or failed to complete the operation; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The change would pass a bound on stored data (the message says which).
    #[error("{0}")]
    Limit(&'static str),
    /// A stored record could not be decoded. Never silently skipped.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which driver to open, and where.
#[derive(Clone)]
pub enum StoreSettings {
    Embedded { data_dir: PathBuf },
    Mongo { uri: String, database: String },
}

// Hand-written so a password inside the MongoDB URI never reaches a log line.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded { data_dir } => f
                .debug_struct("Embedded")
                .field("data_dir", data_dir)
                .finish(),
            Self::Mongo { database, .. } => f
                .debug_struct("Mongo")
                .field("uri", &"<redacted>")
                .field("database", database)
                .finish(),
        }
    }
}

/// Opens the configured driver, creating files, tables and indexes as needed. Fails loudly.
pub async fn open(settings: &StoreSettings) -> StoreResult<DynStore> {
    match settings {
        StoreSettings::Embedded { data_dir } => {
            Ok(Arc::new(EmbeddedStore::open(data_dir.clone()).await?))
        }
        StoreSettings::Mongo { uri, database } => {
            Ok(Arc::new(MongoStore::connect(uri, database).await?))
        }
    }
}

/// The key under which usernames are unique: case-insensitive.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// The key that makes a direct room unique per pair of users, whichever of them opens it.
pub fn direct_key(a: UserId, b: UserId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// Clamps a requested page size into `1..=MAX_PAGE_SIZE`.
pub fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE_SIZE)
}

/// One page of a listing plus the total number of matches, for paginated tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

// ---------------------------------------------------------------------------------------------------------
// Users

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    /// As the user typed it at registration; unique under [`username_key`].
    pub username: Username,
    pub display_name: DisplayName,
    /// PHC string (argon2id).
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    /// Set by an admin password reset: the user must choose a new password at next login.
    pub must_change_password: bool,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    /// Two-factor sign-in: the TOTP secret (base32) once enrolment is confirmed.
    pub totp_secret: Option<String>,
    /// A TOTP enrolment begun and not yet confirmed.
    pub totp_pending: Option<String>,
    /// The last TOTP step accepted: no code is accepted twice.
    pub totp_last_step: u64,
    /// Hashes of the recovery codes not used yet.
    pub recovery_hashes: Vec<String>,
    /// Their profile picture (a file without a room), set with `FileStore::set_picture`.
    pub avatar: Option<FileId>,
}

impl UserRecord {
    pub fn has_two_factor(&self) -> bool {
        self.totp_secret.is_some()
    }
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub display_name: Option<DisplayName>,
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub must_change_password: Option<bool>,
    pub last_seen_at: Option<Timestamp>,
    /// `Some(None)` removes the secret.
    pub totp_secret: Option<Option<String>>,
    pub totp_pending: Option<Option<String>>,
    pub recovery_hashes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Case-insensitive substring of the username or display name.
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserStats {
    pub total: u64,
    pub disabled: u64,
    /// Enabled accounts with the admin role: the ones who can still act as admins.
    pub admins: u64,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Duplicate("username")` when the username is taken, in any letter case.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Case-insensitive lookup.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Users whose username has this look-alike skeleton (`domain::confusable::skeleton`), so a
    /// display name can be refused that would pass for someone else's username.
    async fn users_named_like(&self, skeleton: &str) -> StoreResult<Vec<UserRecord>>;
    /// Applies the patch atomically and returns the updated record.
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<UserRecord>;
    /// Compare-and-set: records `step` as the last TOTP step used, only if it comes after the last
    /// one; whether it did (a code is never accepted twice).
    async fn use_totp_step(&self, id: UserId, step: u64) -> StoreResult<bool>;
    /// Removes one recovery-code hash; whether it was there (each code works once).
    async fn use_recovery_code(&self, id: UserId, hash: &str) -> StoreResult<bool>;
    /// Users ordered by username key.
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Page<UserRecord>>;
    async fn user_stats(&self) -> StoreResult<UserStats>;
}

// ---------------------------------------------------------------------------------------------------------
// Sessions (one per device login; a session is also its refresh-token family)

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session id doubles as the refresh-token family: every token rotated from one login shares it.
    pub id: SessionId,
    pub user_id: UserId,
    /// Hash of the refresh token that is valid now. Raw tokens are never stored.
    pub refresh_hash: String,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Whether the token this session rotated away from last has been let through once already (the
    /// grace for two renewals racing is single-use). Reset by every rotation.
    pub grace_claimed: bool,
    pub user_agent: String,
    pub ip: String,
}

/// What a presented refresh-token hash turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshLookup {
    /// The current token of this session.
    Current(SessionRecord),
    /// A token this session already rotated away from: presenting it again is reuse.
    Spent(SessionRecord),
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn session_by_id(&self, id: SessionId) -> StoreResult<Option<SessionRecord>>;
    async fn find_refresh(&self, token_hash: &str) -> StoreResult<Option<RefreshLookup>>;
    /// Compare-and-swap: replaces `old_hash` by `new_hash` only if `old_hash` is still current and the
    /// session is not revoked; records `old_hash` as spent and clears `grace_claimed`. Returns whether
    /// the rotation happened.
    /// `find_refresh(old_hash)` never answers `None` while this runs (current, then spent).
    async fn rotate_refresh(
        &self,
        id: SessionId,
        old_hash: &str,
        new_hash: &str,
        used_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<bool>;
    /// Compare-and-set: marks the grace of the session's last rotation as used, only if its current
    /// token is still `successor_hash`, it is not revoked and the grace was not used yet. Returns
    /// whether this call got it.
    async fn claim_reuse_grace(&self, id: SessionId, successor_hash: &str) -> StoreResult<bool>;
    /// Marks the session revoked. Revoking an already revoked session keeps the first time.
    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> StoreResult<()>;
    /// Revokes every not-yet-revoked session of the user (expired ones included) except `except`;
    /// returns how many were revoked.
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: Timestamp,
    ) -> StoreResult<u64>;
    /// The user's sessions that are neither revoked nor expired at `now`, most recently used first.
    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Housekeeping: deletes sessions (and their spent hashes) that expired before `before`.
    async fn purge_expired_sessions(&self, before: Timestamp) -> StoreResult<u64>;
}

// ---------------------------------------------------------------------------------------------------------
// Rooms and memberships

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub id: RoomId,
    pub kind: RoomKind,
    pub name: RoomName,
    pub topic: RoomTopic,
    pub created_by: UserId,
    pub created_at: Timestamp,
    /// Archived rooms are read-only and hidden from browsing.
    pub archived: bool,
    /// Only for direct rooms: [`direct_key`] of the two members, unique.
    pub direct_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPatch {
    pub name: Option<RoomName>,
    pub topic: Option<RoomTopic>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomQuery {
    pub kind: Option<RoomKind>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub include_archived: bool,
    pub offset: u64,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub role: MemberRole,
    pub joined_at: Timestamp,
}

/// An invitation to a room, waiting for the invitee to accept or decline it. Nobody becomes a member
/// of a room without saying yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub invited_by: UserId,
    pub at: Timestamp,
}

#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Creates the room with its first members in one step. `Duplicate("direct room")` when a direct room
    /// with the same key exists.
    async fn create_room(&self, room: &RoomRecord, members: &[MembershipRecord])
        -> StoreResult<()>;
    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>>;
    async fn direct_room(&self, key: &str) -> StoreResult<Option<RoomRecord>>;
    async fn update_room(&self, id: RoomId, patch: &RoomPatch) -> StoreResult<RoomRecord>;
    /// Deletes the room with its memberships, invitations, messages and read markers.
    async fn delete_room(&self, id: RoomId) -> StoreResult<()>;
    /// Rooms ordered by name (case-insensitive), then id.
    async fn list_rooms(&self, query: &RoomQuery) -> StoreResult<Page<RoomRecord>>;
    async fn count_rooms(&self) -> StoreResult<u64>;
    /// `Duplicate("membership")` if already a member; `NotFound("room")` if the room is gone.
    async fn add_member(&self, member: &MembershipRecord) -> StoreResult<()>;
    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<()>;
    async fn membership(&self, room: RoomId, user: UserId)
        -> StoreResult<Option<MembershipRecord>>;
    /// Those of `users` who are members of `room`, in the order given (each once). One read however
    /// many are named (a presence watch checks up to `MAX_WATCH` at once).
    async fn members_among(&self, room: RoomId, users: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Members ordered by join time.
    async fn list_members(&self, room: RoomId) -> StoreResult<Vec<MembershipRecord>>;
    /// Rooms the user belongs to, ordered by name.
    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomRecord>>;
    /// `Duplicate("invitation")` if the user is invited already; `NotFound("room")` if the room is
    /// gone.
    async fn add_invitation(&self, invitation: &InvitationRecord) -> StoreResult<()>;
    /// The user's open invitations, oldest first.
    async fn invitations_of(&self, user: UserId) -> StoreResult<Vec<InvitationRecord>>;
    /// Removes an invitation; whether there was one.
    async fn remove_invitation(&self, room: RoomId, user: UserId) -> StoreResult<bool>;
}

// ---------------------------------------------------------------------------------------------------------
// Read markers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMarker {
    pub room_id: RoomId,
    pub seq: u64,
}

#[async_trait]
pub trait ReadMarkerStore: Send + Sync {
    /// Moves the marker forward to `seq` (never back) and returns the marker now stored.
    async fn mark_read(&self, user: UserId, room: RoomId, seq: u64) -> StoreResult<u64>;
    /// The last read sequence, 0 when the user never read the room.
    async fn read_marker(&self, user: UserId, room: RoomId) -> StoreResult<u64>;
    async fn read_markers(&self, user: UserId) -> StoreResult<Vec<ReadMarker>>;
    /// What the user hears about the room (`All` until they choose).
    async fn notify_level(&self, user: UserId, room: RoomId) -> StoreResult<NotifyLevel>;
    async fn set_notify_level(
        &self,
        user: UserId,
        room: RoomId,
        level: NotifyLevel,
    ) -> StoreResult<()>;
}

// ---------------------------------------------------------------------------------------------------------
// Audit log (append-only: there is no update or delete)

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    pub actor_id: Option<UserId>,
    pub actor_name: String,
    /// A stable machine name such as `user.disable`.
    pub action: String,
    /// What the action was applied to, e.g. `user:ana`.
    pub target: String,
    pub ip: String,
    pub details: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exact actor name (case-insensitive).
    pub actor: Option<String>,
    /// Exact action name.
    pub action: Option<String>,
    pub offset: u64,
    pub limit: u32,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditEntry>>;
}

// ---------------------------------------------------------------------------------------------------------

/// Everything the app needs from storage.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + RoomStore
    + MessageStore
    + ReadMarkerStore
    + ThreadStore
    + SearchStore
    + FileStore
    + PushStore
    + AuditStore
    + Send
    + Sync
{
    /// `"embedded"` or `"mongodb"`, for the dashboard and logs.
    fn driver(&self) -> &'static str;
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Opens the bus that carries live events between the instances sharing this store; `None` when
    /// the store serves one process only (embedded).
    async fn event_bus(&self) -> StoreResult<Option<BusConnection>> {
        Ok(None)
    }
}

pub type DynStore = Arc<dyn Store>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_key_is_the_same_whoever_opens_the_room() {
        let a = UserId::new();
        let b = UserId::new();
        assert_eq!(direct_key(a, b), direct_key(b, a));
        assert_ne!(direct_key(a, b), direct_key(a, UserId::new()));
    }

    #[test]
    fn username_key_ignores_case() {
        assert_eq!(username_key("Ana_B"), username_key("ana_b"));
    }

    #[test]
    fn settings_never_print_the_mongodb_uri() {
        let settings = StoreSettings::Mongo {
            uri: "mongodb://admin:hunter2@db:27017".into(),
            database: "chat".into(),
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("chat"));
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(clamp_limit(0), 1);
        assert_eq!(clamp_limit(50), 50);
        assert_eq!(clamp_limit(10_000), MAX_PAGE_SIZE);
    }
}
