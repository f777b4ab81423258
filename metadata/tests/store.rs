//! The index against real databases: SQLite always, PostgreSQL when ARTSTORE_TEST_DATABASE_URL is set.

use artstore_metadata::{ListEntry, ListQuery, MetaError, Mode, NewElement, ObjectRecord, Store};

mod common;
use common::open;

fn rec(bucket: &str, key: &str, size: i64) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        file_id: uuid::Uuid::now_v7().to_string(),
        storage_path: format!("2026/01/01/00/{key}"),
        size,
        etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
        sha256: "e3b0".into(),
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

fn keys(entries: &[ListEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            ListEntry::Object(o) => o.key.clone(),
            ListEntry::CommonPrefix(p) => format!("CP:{p}"),
        })
        .collect()
}

async fn listing_and_counters(kind: &str) {
    let Some(db) = open(kind).await else { return };
    let s = &db.store;
    element(s, "b").await;
    let all = [
        "a", "a/b", "a/b/c", "a/c", "b/x", "b/y", "c", "c+d 100%", "z//", "é",
    ];
    for k in all {
        assert!(s.put_object(&rec("b", k, 10)).await.unwrap().is_none());
    }
    // Overwrite returns the old row and keeps the count.
    let old = s.put_object(&rec("b", "c", 25)).await.unwrap().unwrap();
    assert_eq!(old.size, 10);
    let e = s.get_element("b").await.unwrap().unwrap();
    assert_eq!((e.object_count, e.used_bytes), (10, 115));

    let q = |prefix: &str, d: Option<&str>, after: Option<&str>, max| ListQuery {
        prefix: prefix.into(),
        delimiter: d.map(Into::into),
        after: after.map(Into::into),
        max_keys: max,
    };
    let p = s.list_objects("b", &q("", None, None, 1000)).await.unwrap();
    assert_eq!(keys(&p.entries), all.to_vec(), "byte order, all keys");
    assert!(!p.truncated);

    let p = s
        .list_objects("b", &q("", Some("/"), None, 1000))
        .await
        .unwrap();
    assert_eq!(
        keys(&p.entries),
        ["a", "CP:a/", "CP:b/", "c", "c+d 100%", "CP:z/", "é"]
    );
    let p = s
        .list_objects("b", &q("", Some(""), None, 3))
        .await
        .unwrap();
    assert_eq!(
        keys(&p.entries),
        ["a", "a/b", "a/b/c"],
        "empty delimiter = none"
    );
    assert!(p.truncated);

    // Paging through the grouped listing two at a time yields the same sequence.
    let mut seen = vec![];
    let mut after: Option<String> = None;
    loop {
        let p = s
            .list_objects("b", &q("", Some("/"), after.as_deref(), 2))
            .await
            .unwrap();
        seen.extend(keys(&p.entries));
        if !p.truncated {
            break;
        }
        after = p.last_position().map(str::to_owned);
    }
    assert_eq!(seen, ["a", "CP:a/", "CP:b/", "c", "c+d 100%", "CP:z/", "é"]);

    let p = s
        .list_objects("b", &q("a/", Some("/"), None, 10))
        .await
        .unwrap();
    assert_eq!(keys(&p.entries), ["a/b", "CP:a/b/", "a/c"]);
    let p = s
        .list_objects("b", &q("a/", None, Some("a/b"), 10))
        .await
        .unwrap();
    assert_eq!(keys(&p.entries), ["a/b/c", "a/c"]);
    // A marker inside an already returned prefix does not return it again.
    let p = s
        .list_objects("b", &q("", Some("/"), Some("b/x"), 10))
        .await
        .unwrap();
    assert_eq!(keys(&p.entries), ["c", "c+d 100%", "CP:z/", "é"]);

    assert!(matches!(
        s.delete_element("b").await,
        Err(MetaError::NotEmpty(_))
    ));
    for k in all {
        assert!(s.delete_object("b", k).await.unwrap().is_some());
    }
    let e = s.get_element("b").await.unwrap().unwrap();
    assert_eq!((e.object_count, e.used_bytes), (0, 0));
    s.delete_element("b").await.unwrap();
    assert!(s.get_element("b").await.unwrap().is_none());
}

#[tokio::test]
async fn listing_and_counters_sqlite() {
    listing_and_counters("sqlite").await;
}

#[tokio::test]
async fn listing_and_counters_postgres() {
    listing_and_counters("postgres").await;
}

/// `put_objects_if`: one transaction for a batch; a refused record writes nothing of itself
/// (no row, no counter change), the others are indexed with their search rows.
async fn batch_put_leaves_refused_records_out(kind: &str) {
    let Some(db) = open(kind).await else { return };
    let s = &db.store;
    element(s, "b").await;
    let held = rec("b", "held", 7);
    s.put_object(&held).await.unwrap();
    let mut a = rec("b", "a", 10);
    a.custom_attributes
        .insert("project".into(), "apollo".into());
    let clash = rec("b", "held", 1000);
    let c = rec("b", "c", 20);
    let out = s
        .put_objects_if(&[a.clone(), clash, c.clone()], |r, current| match current {
            Some(cur) if cur.file_id != r.file_id => Err(cur.storage_path.clone()),
            _ => Ok(()),
        })
        .await
        .unwrap();
    assert_eq!(out, vec![Ok(()), Err(held.storage_path.clone()), Ok(())]);
    let e = s.get_element("b").await.unwrap().unwrap();
    assert_eq!((e.object_count, e.used_bytes), (3, 37));
    assert_eq!(s.get_object("b", "held").await.unwrap().unwrap(), held);
    assert_eq!(s.get_object("b", "c").await.unwrap().unwrap(), c);
    let page = s
        .search(&artstore_metadata::SearchQuery {
            attrs: vec![artstore_metadata::AttrFilter {
                name: "project".into(),
                cond: artstore_metadata::AttrCond::Equals(vec!["apollo".into()]),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].object.key, "a");
}

#[tokio::test]
async fn batch_put_leaves_refused_records_out_sqlite() {
    batch_put_leaves_refused_records_out("sqlite").await;
}

#[tokio::test]
async fn batch_put_leaves_refused_records_out_postgres() {
    batch_put_leaves_refused_records_out("postgres").await;
}

/// N handles on one index (like N nodes) doing first-start work at once: one of them does it.
async fn first_start_work_happens_once(kind: &str) {
    let Some(db) = open(kind).await else { return };
    let key = artstore_metadata::MasterKey::generate();
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let secrets = artstore_metadata::SecretBox::new(&key);
        nodes.push(Store::connect(&db.url, secrets).await.unwrap());
    }
    let admin = |n: usize| artstore_metadata::NewAccount {
        name: "admin".into(),
        description: None,
        client_id: format!("AKNODE{n}"),
        client_secret: format!("secret of node {n}"),
        role: artstore_metadata::Role::Admin,
        rate_limit: None,
        secret_expires_ms: None,
        is_system: true,
    };
    let created = futures_join(
        nodes
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let s = s.clone();
                async move { s.create_system_account_once(&admin(n)).await }
            })
            .collect(),
    )
    .await;
    let created: Vec<_> = created.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(created.len(), 1, "one node creates the account");
    let stored = nodes[0].system_account().await.unwrap().unwrap();
    assert_eq!(stored.client_id, created[0].client_id);

    let signing = |n: usize| artstore_metadata::SigningKey {
        kid: format!("kid-{n}"),
        alg: "RS256".into(),
        private_pem: format!("not a real key {n}"),
        n: "AQAB".into(),
        e: "AQAB".into(),
        created_ms: 0,
    };
    let stored_keys = futures_join(
        nodes
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let s = s.clone();
                async move { s.insert_first_signing_key(&signing(n)).await }
            })
            .collect(),
    )
    .await;
    let winners = stored_keys
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(winners, 1, "one node stores the first key");
    assert_eq!(nodes[0].signing_keys().await.unwrap().len(), 1);
}

/// Runs the futures at once, each on a task of its own.
async fn futures_join<T: Send + 'static>(
    futs: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_start_work_happens_once_sqlite() {
    first_start_work_happens_once("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_start_work_happens_once_postgres() {
    first_start_work_happens_once("postgres").await;
}
