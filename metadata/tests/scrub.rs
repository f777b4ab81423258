//! The scrub's shared cursor and damage marks against real databases (SQLite always,
//! PostgreSQL when ARTSTORE_TEST_DATABASE_URL is set).

use std::collections::BTreeSet;

use artstore_metadata::{MasterKey, Mode, NewElement, ObjectRecord, SecretBox, Store};

mod common;
use common::open;

fn rec(bucket: &str, key: &str) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        file_id: uuid::Uuid::now_v7().to_string(),
        storage_path: format!("2026/01/01/00/{key}"),
        size: 1,
        etag: "e".into(),
        sha256: "s".into(),
        content_type: "application/octet-stream".into(),
        owner_id: "o".into(),
        owner_name: "root".into(),
        created_ms: 1,
        updated_ms: 1,
        ..Default::default()
    }
}

async fn element(store: &Store, name: &str) {
    store
        .create_element(&NewElement {
            name: name.into(),
            mode: Mode::Edit,
            backend: r#"{"kind":"local"}"#.into(),
            capacity_bytes: None,
            description: None,
            created_by: "root".into(),
        })
        .await
        .unwrap();
}

/// Claims batches until the pass ends; returns every (bucket, key) claimed.
async fn one_pass(store: Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let b = store.claim_scrub_batch(7).await.unwrap();
        // The end of pass 0, or a batch of the next pass the other node already began.
        if b.wrapped || b.pass > 0 {
            return out;
        }
        out.extend(b.items.into_iter().map(|i| (i.bucket, i.key)));
    }
}

/// Two nodes on one index claim disjoint batches that together cover every object once.
async fn nodes_share_one_pass(kind: &str) {
    let Some(db) = open(kind).await else { return };
    let s = &db.store;
    let mut all = BTreeSet::new();
    for bucket in ["a-one", "b-two"] {
        element(s, bucket).await;
        for i in 0..60 {
            let key = format!("k{i:03}");
            s.put_object(&rec(bucket, &key)).await.unwrap();
            all.insert((bucket.to_owned(), key));
        }
    }
    let other = Store::connect(&db.url, SecretBox::new(&MasterKey::generate()))
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        tokio::spawn(one_pass(s.clone())),
        tokio::spawn(one_pass(other.clone()))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut seen = BTreeSet::new();
    for k in x.iter().chain(&y) {
        assert!(seen.insert(k.clone()), "{k:?} claimed twice in one pass");
    }
    assert_eq!(seen, all, "one pass covers every object");
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_pass_sqlite() {
    nodes_share_one_pass("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_pass_postgres() {
    nodes_share_one_pass("postgres").await;
}

/// The mark belongs to a file: kept by a rewrite of the same file's row, cleared by a new file.
async fn marks_follow_the_file(kind: &str) {
    let Some(db) = open(kind).await else { return };
    let s = &db.store;
    element(s, "b").await;
    let first = rec("b", "k");
    s.put_object(&first).await.unwrap();
    assert!(!s.mark_damaged("b", "k", "another-file", "x").await.unwrap());
    assert!(
        s.mark_damaged("b", "k", &first.file_id, "size")
            .await
            .unwrap()
    );
    assert!(
        !s.mark_damaged("b", "k", &first.file_id, "size")
            .await
            .unwrap()
    );
    let mut retagged = first.clone();
    retagged.tags.insert("t".into(), "v".into());
    s.put_object(&retagged).await.unwrap();
    let (row, damage) = s.get_object_marked("b", "k").await.unwrap().unwrap();
    assert_eq!((row, damage.as_deref()), (retagged, Some("size")));
    assert!(s.clear_damage("b", "k", &first.file_id).await.unwrap());
    assert_eq!(s.damage_of("b", "k", &first.file_id).await.unwrap(), None);
    s.mark_damaged("b", "k", &first.file_id, "size")
        .await
        .unwrap();
    let second = rec("b", "k");
    s.put_object(&second).await.unwrap();
    assert_eq!(
        s.get_object_marked("b", "k").await.unwrap().unwrap().1,
        None
    );
}

#[tokio::test]
async fn marks_follow_the_file_sqlite() {
    marks_follow_the_file("sqlite").await;
}

#[tokio::test]
async fn marks_follow_the_file_postgres() {
    marks_follow_the_file("postgres").await;
}
