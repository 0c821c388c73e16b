//! The browser's thread state: the replies of the threads the page has open, their roots, and the
//! threads the reader follows with what they have not read yet.

use super::Live;
use crate::model::MessageId;
use crate::protocol::MessageView;
use leptos::prelude::*;
use std::collections::BTreeMap;

impl Live {
    /// A reply arrived or changed: into its open thread, and the room's revision moves on.
    pub(super) fn apply_reply(&self, message: MessageView) {
        let Some(thread) = message.thread else { return };
        let me = self.me.get_untracked();
        let mine = me == Some(message.author);
        let mentions_me = me.is_some_and(|me| message.mentions.contains(&me));
        let followed = self.follows(thread.root);
        if message.thread_only() {
            self.advance_rev(message.room, message.rev);
        }
        self.threads.update(|map| {
            if let Some(list) = map.get_mut(&thread.root) {
                match list.get(&thread.at_rev) {
                    Some(held) if held.rev > message.rev => {}
                    _ => {
                        list.insert(thread.at_rev, message);
                    }
                }
            }
        });
        // Replying or being mentioned makes the reader a follower: read the list again.
        if !followed && (mine || mentions_me) {
            self.follows_changed.update(|n| *n += 1);
        }
    }

    /// A root's summary changed: the open thread's copy and the followed list's take it.
    pub(super) fn apply_root(&self, root: &MessageView) {
        self.thread_roots.update(|map| {
            if let Some(held) = map.get_mut(&root.id) {
                if held.rev <= root.rev {
                    *held = root.clone();
                }
            }
        });
        let mut found = false;
        self.followed.update(|list| {
            for item in list.iter_mut().filter(|t| t.root.id == root.id) {
                found = true;
                if item.root.rev <= root.rev {
                    item.root = root.clone();
                }
            }
        });
        // The first reply to the reader's own message makes them a follower.
        if !found && self.me.get_untracked() == Some(root.author) {
            self.follows_changed.update(|n| *n += 1);
        }
    }

    /// Puts a thread page in place (the panel opened it, or loaded older replies).
    pub fn seed_thread(&self, root: MessageView, replies: Vec<MessageView>) {
        let id = root.id;
        self.thread_roots.update(|map| match map.get(&id) {
            Some(held) if held.rev > root.rev => {}
            _ => {
                map.insert(id, root);
            }
        });
        self.threads.update(|map| {
            let list = map.entry(id).or_insert_with(BTreeMap::new);
            for reply in replies {
                let Some(at) = reply.thread.map(|t| t.at_rev) else {
                    continue;
                };
                match list.get(&at) {
                    Some(held) if held.rev > reply.rev => {}
                    _ => {
                        list.insert(at, reply);
                    }
                }
            }
        });
    }

    pub fn follows(&self, root: MessageId) -> bool {
        self.followed
            .with_untracked(|list| list.iter().any(|t| t.root.id == root))
    }

    /// Replies to threads the reader follows that they have not read.
    pub fn all_thread_unread(&self) -> u64 {
        self.followed
            .with(|list| list.iter().map(super::super::FollowedThread::unread).sum())
    }

    /// The reader has now seen every reply of `root`: how many that is, if it moved their count.
    pub fn saw_thread(&self, root: MessageId) -> Option<u64> {
        let mut moved = None;
        self.followed.update(|list| {
            for item in list.iter_mut().filter(|t| t.root.id == root) {
                let count = item.root.replies.as_ref().map_or(0, |r| r.count);
                if count > item.read {
                    item.read = count;
                    moved = Some(count);
                }
            }
        });
        moved
    }
}
