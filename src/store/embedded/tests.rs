//! Unit tests of the embedded store's own mechanics (the sweep, the file
//! lock); the behaviour every store shares is the conformance suite's
//! (`tests/it/store.rs`).

use super::*;

fn record(user_id: &str, expires_at: u64) -> SessionRecord {
    SessionRecord {
        user_id: user_id.into(),
        email: format!("{user_id}@example.com"),
        created_at: 0,
        expires_at,
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        amr: "email".into(),
        extra_roles: Vec::new(),
    }
}

fn hash(i: u32) -> TokenHash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&i.to_be_bytes());
    TokenHash(h)
}

fn count(store: &EmbeddedStore, table: redb::TableDefinition<&[u8], &[u8]>) -> u64 {
    use redb::ReadableTableMetadata;
    let txn = store.db.begin_read().unwrap();
    txn.open_table(table).unwrap().len().unwrap()
}

fn index_len(store: &EmbeddedStore) -> u64 {
    use redb::ReadableTableMetadata;
    let txn = store.db.begin_read().unwrap();
    let by_user = txn.open_table(BY_USER).unwrap().len().unwrap();
    let expiry = txn.open_table(tables::EXPIRY).unwrap().len().unwrap();
    by_user + expiry
}

#[tokio::test]
async fn ended_records_and_their_index_entries_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(1_000);
    let store = EmbeddedStore::open(&dir.path().join("store"), clock.clone()).unwrap();
    let idle = Duration::from_millis(100);
    for i in 0..200 {
        let user = format!("u{}", i % 10);
        store
            .create_session(&hash(i), &record(&user, 1_000_000), idle, 1_000)
            .await
            .unwrap();
        store
            .put_link(&hash(i), &link(), Duration::from_millis(50))
            .await
            .unwrap();
        store
            .hit(&format!("k{i}"), Duration::from_millis(50))
            .await
            .unwrap();
    }
    assert!(count(&store, SESSIONS) > 100);
    // Much later every one has ended; a few writes sweep them all.
    clock.advance(Duration::from_secs(10));
    for i in 0..20 {
        store
            .create_session(&hash(10_000 + i), &record("fresh", 1_000_000), idle, 11_000)
            .await
            .unwrap();
    }
    assert_eq!(count(&store, SESSIONS), 20);
    assert_eq!(count(&store, LINKS), 0);
    // What is left in the indexes is the fresh sessions' entries only.
    assert_eq!(index_len(&store), 40);
}

fn link() -> LinkRecord {
    LinkRecord {
        email: "a@example.com".into(),
        return_to: String::new(),
        attempt: String::new(),
        created_at: 0,
        expires_at: 0,
        ip: String::new(),
        user_agent: String::new(),
    }
}

#[tokio::test]
async fn a_second_open_is_refused_while_the_first_holds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("store");
    let first = EmbeddedStore::open(&path, Clock::system()).unwrap();
    let second = EmbeddedStore::open(&path, Clock::system());
    assert!(
        matches!(&second, Err(StoreError::Locked { path: p }) if *p == path),
        "{:?}",
        second.as_ref().err()
    );
    drop(first);
    EmbeddedStore::open(&path, Clock::system()).unwrap();
}
