//! What survives a reopen, and the embedded file being released when the store is dropped.

use crate::fixtures::*;
use crate::Harness;
use app::store::*;
use std::sync::Arc;

pub async fn data_survives_reopen(h: &mut Harness) {
    let (room_id, owner, session_id) = {
        let store = h.store();
        let (room_id, owner) = make_room(store, "durable").await;
        append_n(store, room_id, owner, 3).await;
        store.mark_read(owner, room_id, 2).await.unwrap();
        let s = session(owner, "durable-token", 1_000, 900_000);
        store.create_session(&s).await.unwrap();
        (room_id, owner, s.id)
    };
    h.reopen().await;
    let store = h.store();
    assert_eq!(
        seqs(
            &store
                .history(room_id, HistoryQuery::latest(10))
                .await
                .unwrap()
        ),
        [1, 2, 3]
    );
    assert_eq!(store.read_marker(owner, room_id).await.unwrap(), 2);
    assert!(store.session_by_id(session_id).await.unwrap().is_some());
    assert!(store.user_by_id(owner).await.unwrap().is_some());
    // Sequences continue where they stopped.
    let next = store
        .append_message(&message(room_id, owner, "after-reopen", 9))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 4);
}

/// The embedded store's writer thread holds the database file too. Dropping the last handle must release
/// the file before the drop returns: a restart or `server admin` right after the server stopped found it
/// still locked once (a CI failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn embedded_store_releases_its_file_when_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..20 {
        let store: DynStore = Arc::new(
            EmbeddedStore::open(dir.path().to_path_buf())
                .await
                .expect("open embedded store"),
        );
        make_room(store.as_ref(), &format!("round-{round}")).await;
        drop(store);
        // Opened synchronously right after the drop, with no await in between to give a thread time.
        let reopened = redb::Database::create(dir.path().join(app::store::DB_FILE));
        assert!(
            reopened.is_ok(),
            "round {round}: the file is still locked after the store was dropped"
        );
    }
}
