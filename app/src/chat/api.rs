//! Rooms over HTTP: server functions at stable paths under `/api/rooms` (listed in the README). Live
//! traffic (sending, typing, presence) goes over the websocket instead.

use super::{
    EditView, FollowedThread, InvitationView, MemberView, MentionView, RoomSummary, SearchHit,
    ThreadPage,
};
use crate::error::AppError;
use crate::model::{MessageId, NotifyLevel, RoomId, Timestamp};
use crate::protocol::MessageView;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[cfg(feature = "ssr")]
use crate::{
    chat::{mentions, messages, rooms, search, threads},
    request::serve_user,
};

/// The caller's rooms and direct messages, with unread counts.
#[server(prefix = "/api", endpoint = "rooms/mine", input = GetUrl)]
pub async fn my_rooms() -> Result<Vec<RoomSummary>, AppError> {
    serve_user(async |ctx, me| rooms::my_rooms(&ctx.state, &me).await).await
}

/// Public rooms whose name contains `search`, 50 at a time from `offset`; with the total.
#[server(prefix = "/api", endpoint = "rooms/browse", input = GetUrl)]
pub async fn browse_rooms(
    search: String,
    offset: u64,
) -> Result<(Vec<RoomSummary>, u64), AppError> {
    serve_user(async |ctx, me| rooms::browse(&ctx.state, &me, &search, offset).await).await
}

/// Creates a public or private room with the caller as owner.
#[server(prefix = "/api", endpoint = "rooms/create")]
pub async fn create_room(
    name: String,
    topic: String,
    private: bool,
) -> Result<RoomSummary, AppError> {
    serve_user(async |ctx, me| rooms::create_room(&ctx.state, &me, &name, &topic, private).await)
        .await
}

#[server(prefix = "/api", endpoint = "rooms/join")]
pub async fn join_room(room: RoomId) -> Result<RoomSummary, AppError> {
    serve_user(async |ctx, me| rooms::join(&ctx.state, &me, room).await).await
}

#[server(prefix = "/api", endpoint = "rooms/leave")]
pub async fn leave_room(room: RoomId) -> Result<(), AppError> {
    serve_user(async |ctx, me| rooms::leave(&ctx.state, &me, room).await).await
}

/// Invites `username` to a room the caller belongs to; they join by accepting.
#[server(prefix = "/api", endpoint = "rooms/invite")]
pub async fn invite_to_room(room: RoomId, username: String) -> Result<InvitationView, AppError> {
    serve_user(async |ctx, me| rooms::invite(&ctx.state, &me, room, &username).await).await
}

/// The direct-message room with `username` (the same one every time).
#[server(prefix = "/api", endpoint = "rooms/direct")]
pub async fn open_direct(username: String) -> Result<RoomSummary, AppError> {
    serve_user(async |ctx, me| rooms::open_direct(&ctx.state, &me, &username).await).await
}

#[server(prefix = "/api", endpoint = "rooms/members", input = GetUrl)]
pub async fn room_members(room: RoomId) -> Result<Vec<MemberView>, AppError> {
    serve_user(async |ctx, me| rooms::members(&ctx.state, &me, room).await).await
}

/// A page of history, oldest first: the latest messages, those before sequence `before`, or those
/// after sequence `after`.
#[server(prefix = "/api", endpoint = "rooms/history", input = GetUrl)]
pub async fn room_history(
    room: RoomId,
    before: Option<u64>,
    after: Option<u64>,
) -> Result<Vec<MessageView>, AppError> {
    serve_user(async |ctx, me| messages::history(&ctx.state, &me, room, before, after).await).await
}

/// The earlier versions of an edited message, oldest first.
#[server(prefix = "/api", endpoint = "messages/edits", input = GetUrl)]
pub async fn message_edits(message: MessageId) -> Result<Vec<EditView>, AppError> {
    serve_user(async |ctx, me| messages::edit_history(&ctx.state, &me, message).await).await
}

/// Messages that mention the caller, newest first, 50 at a time: the next page starts before the
/// last one's `created_at` and `id`.
#[server(prefix = "/api", endpoint = "mentions", input = GetUrl)]
pub async fn my_mentions(
    before_at: Option<Timestamp>,
    before_id: Option<MessageId>,
) -> Result<Vec<MentionView>, AppError> {
    let before = before_at.zip(before_id);
    serve_user(async |ctx, me| mentions::my_mentions(&ctx.state, &me, before).await).await
}

/// Messages matching `q` in the caller's rooms (or only `room`), newest first, 20 at a time; the next
/// page starts before the last result's `created_at` and `id`.
#[server(prefix = "/api", endpoint = "search", input = GetUrl)]
pub async fn search_messages(
    q: String,
    room: Option<RoomId>,
    before_at: Option<Timestamp>,
    before_id: Option<MessageId>,
) -> Result<Vec<SearchHit>, AppError> {
    let before = before_at.zip(before_id);
    serve_user(async |ctx, me| search::search(&ctx.state, &me, &q, room, before).await).await
}

/// A thread: its root and the newest page of replies (or those before reply revision `before`).
#[server(prefix = "/api", endpoint = "threads/show", input = GetUrl)]
pub async fn open_thread(root: MessageId, before: Option<u64>) -> Result<ThreadPage, AppError> {
    serve_user(async |ctx, me| threads::thread_page(&ctx.state, &me, root, before).await).await
}

/// The threads the caller follows, latest reply first, with how many replies they read.
#[server(prefix = "/api", endpoint = "threads/mine", input = GetUrl)]
pub async fn my_threads() -> Result<Vec<FollowedThread>, AppError> {
    serve_user(async |ctx, me| threads::followed(&ctx.state, &me).await).await
}

/// Follows or stops following a thread; whether the caller follows it now.
#[server(prefix = "/api", endpoint = "threads/follow")]
pub async fn follow_thread(root: MessageId, on: bool) -> Result<bool, AppError> {
    serve_user(async |ctx, me| threads::set_following(&ctx.state, &me, root, on).await).await
}

/// The caller has read `read` replies of a thread they follow.
#[server(prefix = "/api", endpoint = "threads/read")]
pub async fn mark_thread_read(root: MessageId, read: u64) -> Result<(), AppError> {
    serve_user(async |ctx, me| threads::mark_read(&ctx.state, &me, root, read).await).await
}

/// What the caller hears about a room: `all`, `mentions` or `nothing`.
#[server(prefix = "/api", endpoint = "rooms/notify")]
pub async fn set_room_notify(room: RoomId, level: String) -> Result<NotifyLevel, AppError> {
    serve_user(async |ctx, me| rooms::set_notify(&ctx.state, me.user.id, room, &level).await).await
}

/// Moves the caller's read marker in `room` forward to `seq`.
#[server(prefix = "/api", endpoint = "rooms/read")]
pub async fn mark_read(room: RoomId, seq: u64) -> Result<u64, AppError> {
    serve_user(async |ctx, me| rooms::mark_read(&ctx.state, me.user.id, room, seq).await).await
}

/// A room with its latest messages (or, with `at`, the messages around that sequence) and its
/// members, for the room page.
#[server(prefix = "/api", endpoint = "rooms/page", input = GetUrl)]
pub async fn room_page(room: RoomId, at: Option<u64>) -> Result<super::RoomPageData, AppError> {
    serve_user(async |ctx, me| rooms::room_page(&ctx.state, &me, room, at).await).await
}

/// The caller's open invitations.
#[server(prefix = "/api", endpoint = "rooms/invitations", input = GetUrl)]
pub async fn my_invitations() -> Result<Vec<InvitationView>, AppError> {
    serve_user(async |ctx, me| rooms::invitations(&ctx.state, &me).await).await
}

/// Accepts an invitation: the caller joins the room.
#[server(prefix = "/api", endpoint = "rooms/invitations/accept")]
pub async fn accept_invitation(room: RoomId) -> Result<RoomSummary, AppError> {
    serve_user(async |ctx, me| rooms::accept_invitation(&ctx.state, &me, room).await).await
}

/// Declines an invitation.
#[server(prefix = "/api", endpoint = "rooms/invitations/decline")]
pub async fn decline_invitation(room: RoomId) -> Result<(), AppError> {
    serve_user(async |ctx, me| rooms::decline_invitation(&ctx.state, &me, room).await).await
}
