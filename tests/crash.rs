//! SIGKILL at random moments while several clients write (DESIGN.md §3, invariants 1–4).
//!
//! Each round starts the server, lets 4 clients run small, large and multipart PUTs,
//! overwrites, CopyObject REPLACE, tagging and DELETEs on keys of their own, and kills the
//! server with SIGKILL after a random delay. Every client keeps what each key may hold now:
//! exactly the last acknowledged state, or, for the request the kill cut off, that state or the
//! one the request would have made. After every restart each key must read back as one of
//! those (SHA-256 of the body, content type, metadata, tags); after the last: no temp file, no
//! orphan, `index verify` clean, and `index rebuild` of a lost index reproduces the listing.
//!
//! `ARTSTORE_CRASH_ROUNDS` (default 8) and `ARTSTORE_CRASH_SEED` (default: the clock, printed)
//! choose the run; `bench/scripts/crash-rounds.sh` runs this for thousands of rounds.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective, Tag, Tagging};

const CLIENTS: usize = 4;
const KEYS_PER_CLIENT: usize = 5;
const BUCKET: &str = "crash";

/// Reproducible pseudo-random numbers (xorshift64*).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a client can observe of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Obj {
    sha256: String,
    size: usize,
    content_type: String,
    meta: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

/// What a key may hold: `None` = no object.
type State = Option<Obj>;

/// A key's possible states: one when the last request was acknowledged, two when a kill cut
/// off the last request (before or after its commit).
#[derive(Clone, Debug)]
struct Key {
    name: String,
    may_be: Vec<State>,
}

impl Key {
    fn known(&self) -> Option<&State> {
        match self.may_be.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

fn is_transport_error<E, R: std::fmt::Debug>(e: &aws_sdk_s3::error::SdkError<E, R>) -> bool {
    use aws_sdk_s3::error::SdkError;
    matches!(
        e,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) | SdkError::TimeoutError(_)
    )
}

/// The outcome of one request: acknowledged, or cut off by the kill (panics on an S3 error:
/// every request here is valid).
macro_rules! sent {
    ($what:expr, $call:expr) => {
        match $call {
            Ok(v) => Some(v),
            Err(e) if is_transport_error(&e) => None,
            Err(e) => panic!("{} answered an error: {e:?}", $what),
        }
    };
}

fn body_of(rng: &mut Rng, kind: u64) -> Vec<u8> {
    let len = match kind {
        0 => 1 + rng.below(64 << 10) as usize,
        _ => (1 << 20) + rng.below(7 << 20) as usize,
    };
    pattern(len, rng.next())
}

fn obj(data: &[u8], content_type: &str, meta: &[(&str, String)], tags: &[(&str, String)]) -> Obj {
    Obj {
        sha256: sha256_hex(data),
        size: data.len(),
        content_type: content_type.to_owned(),
        meta: meta
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

fn tag_query(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// One request on one of the client's keys. Returns false once the server is gone.
async fn one_op(c: &s3::Client, rng: &mut Rng, keys: &mut [Key], client: usize, n: u64) -> bool {
    let i = rng.below(keys.len() as u64) as usize;
    let key = keys[i].name.clone();
    let current = keys[i].known().cloned().flatten();
    let stamp = format!("c{client}-op{n}");
    let (new, acked): (State, bool) = match rng.below(10) {
        // Small or large PUT (an overwrite when the key holds an object).
        k @ 0..=3 => {
            let data = body_of(rng, u64::from(k == 3));
            let ct = format!("application/x-{stamp}");
            let new = obj(
                &data,
                &ct,
                &[("op", stamp.clone())],
                &[("by", stamp.clone())],
            );
            let r = c
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(ByteStream::from(data))
                .content_type(&ct)
                .metadata("op", &stamp)
                .tagging(tag_query(&new.tags))
                .send()
                .await;
            (Some(new), sent!("PutObject", r).is_some())
        }
        // Multipart: 5 MiB + a small tail.
        4 => {
            let a = pattern(5 << 20, rng.next());
            let b = pattern(1 + rng.below(100_000) as usize, rng.next());
            let mut all = a.clone();
            all.extend_from_slice(&b);
            let ct = "application/x-multipart".to_owned();
            let new = obj(&all, &ct, &[("op", stamp.clone())], &[]);
            let Some(up) = sent!(
                "CreateMultipartUpload",
                c.create_multipart_upload()
                    .bucket(BUCKET)
                    .key(&key)
                    .content_type(&ct)
                    .metadata("op", &stamp)
                    .send()
                    .await
            ) else {
                return false;
            };
            let id = up.upload_id().unwrap_or_default().to_owned();
            let mut parts = Vec::new();
            for (n, body) in [(1, a), (2, b)] {
                let Some(p) = sent!(
                    "UploadPart",
                    c.upload_part()
                        .bucket(BUCKET)
                        .key(&key)
                        .upload_id(&id)
                        .part_number(n)
                        .body(ByteStream::from(body))
                        .send()
                        .await
                ) else {
                    return false;
                };
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .e_tag(p.e_tag().unwrap_or_default())
                        .build(),
                );
            }
            let r = c
                .complete_multipart_upload()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await;
            (Some(new), sent!("CompleteMultipartUpload", r).is_some())
        }
        // CopyObject REPLACE from another key of this client whose content is known.
        5 | 6 => {
            let Some((src, src_obj)) = keys.iter().find_map(|k| match k.known() {
                Some(Some(o)) if k.name != key => Some((k.name.clone(), o.clone())),
                _ => None,
            }) else {
                return true;
            };
            let ct = format!("text/x-copy-{stamp}");
            let new = Obj {
                content_type: ct.clone(),
                meta: [("op".to_owned(), stamp.clone())].into(),
                // A copy carries the source's tags unless told otherwise.
                ..src_obj
            };
            let r = c
                .copy_object()
                .bucket(BUCKET)
                .key(&key)
                .copy_source(format!("{BUCKET}/{src}"))
                .metadata_directive(MetadataDirective::Replace)
                .content_type(&ct)
                .metadata("op", &stamp)
                .send()
                .await;
            (Some(new), sent!("CopyObject", r).is_some())
        }
        // Tagging rewrites the sidecar of the same data file.
        7 => {
            let Some(cur) = current else {
                return true;
            };
            let new = Obj {
                tags: [("tagged".to_owned(), stamp.clone())].into(),
                ..cur
            };
            let r = c
                .put_object_tagging()
                .bucket(BUCKET)
                .key(&key)
                .tagging(
                    Tagging::builder()
                        .tag_set(
                            Tag::builder()
                                .key("tagged")
                                .value(&stamp)
                                .build()
                                .expect("tag"),
                        )
                        .build()
                        .expect("tagging"),
                )
                .send()
                .await;
            (Some(new), sent!("PutObjectTagging", r).is_some())
        }
        _ => {
            if keys[i].known() == Some(&None) {
                return true;
            }
            let r = c.delete_object().bucket(BUCKET).key(&key).send().await;
            (None, sent!("DeleteObject", r).is_some())
        }
    };
    if acked {
        keys[i].may_be = vec![new];
        true
    } else {
        keys[i].may_be.push(new);
        false
    }
}

/// Runs one client until the server goes away; returns its keys' possible states and how
/// many requests were acknowledged.
async fn client_loop(
    c: s3::Client,
    mut rng: Rng,
    mut keys: Vec<Key>,
    client: usize,
) -> (Vec<Key>, u64) {
    let mut n = 0;
    // Requests that found nothing to act on count too; only the kill stops a client.
    while one_op(&c, &mut rng, &mut keys, client, n).await {
        n += 1;
    }
    (keys, n)
}

/// What the key holds now, as a client sees it.
async fn observe(c: &s3::Client, key: &str) -> State {
    let h = match c.head_object().bucket(BUCKET).key(key).send().await {
        Ok(h) => h,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            assert_eq!(status, Some(404), "HEAD {key}: {e:?}");
            sdk_err(c.get_object().bucket(BUCKET).key(key).send().await).assert(404, "NoSuchKey");
            return None;
        }
    };
    let data = get(c, BUCKET, key).await;
    let tags = c
        .get_object_tagging()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("tagging {key}: {e:?}"));
    Some(Obj {
        sha256: sha256_hex(&data),
        size: data.len(),
        content_type: h.content_type().unwrap_or_default().to_owned(),
        meta: h
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        tags: tags
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    })
}

/// Checks every key against what it may hold and makes the observed state the known one.
async fn check(srv: &Server, keys: &mut [Key], round: u32) {
    let c = srv.client();
    for k in keys.iter_mut() {
        let now = observe(&c, &k.name).await;
        assert!(
            k.may_be.contains(&now),
            "round {round}: {} holds {now:?}, but it may only be one of {:?}",
            k.name,
            k.may_be
        );
        k.may_be = vec![now];
    }
}

/// Checks every client's keys, then that the listing holds exactly the keys with an object.
async fn check_all(srv: &Server, keys: &mut [Vec<Key>], round: u32) {
    for k in keys.iter_mut() {
        check(srv, k, round).await;
    }
    let mut present: Vec<String> = keys
        .iter()
        .flatten()
        .filter(|k| matches!(k.known(), Some(Some(_))))
        .map(|k| k.name.clone())
        .collect();
    present.sort();
    assert_eq!(
        list_keys(&srv.client(), BUCKET).await,
        present,
        "round {round}: listing"
    );
}

/// The listing with everything a client sees of each object.
async fn listing(c: &s3::Client) -> Vec<String> {
    let out = c
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect("list");
    let mut rows = Vec::new();
    for o in out.contents() {
        let key = o.key().unwrap_or_default();
        let h = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("head");
        let mut meta: Vec<_> = h
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        meta.sort();
        rows.push(format!(
            "{key} size={:?} etag={:?} modified={:?} type={:?} meta={meta:?}",
            o.size(),
            o.e_tag(),
            o.last_modified().map(|t| t.as_nanos()),
            h.content_type(),
        ));
    }
    rows
}

storage_test!(sigkill_rounds_lose_nothing, |srv| async move {
    let mut srv = srv;
    let rounds: u32 = std::env::var("ARTSTORE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let seed: u64 = std::env::var("ARTSTORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!(
        "crash rounds: {rounds}, ARTSTORE_CRASH_SEED={seed}, db={:?}",
        srv.db()
    );
    let mut rng = Rng(seed | 1);
    create_bucket(&srv.client(), BUCKET).await;
    let mut keys: Vec<Vec<Key>> = (0..CLIENTS)
        .map(|c| {
            (0..KEYS_PER_CLIENT)
                .map(|k| Key {
                    name: format!("c{c}/doc-{k}.bin"),
                    may_be: vec![None],
                })
                .collect()
        })
        .collect();
    let (mut acked, mut in_doubt) = (0u64, 0usize);
    for round in 1..=rounds {
        let tasks: Vec<_> = keys
            .drain(..)
            .enumerate()
            .map(|(i, k)| {
                let c = srv.client();
                let r = Rng(rng.next() | 1);
                tokio::spawn(client_loop(c, r, k, i))
            })
            .collect();
        // Kill at a random moment: early in a request or deep into a multipart upload.
        tokio::time::sleep(Duration::from_millis(50 + rng.below(1500))).await;
        srv.kill9();
        for t in tasks {
            let (k, n) = t.await.expect("client task");
            acked += n;
            in_doubt += k.iter().filter(|k| k.known().is_none()).count();
            keys.push(k);
        }
        srv.restart().await;
        check_all(&srv, &mut keys, round).await;
        srv.assert_no_temp_files(BUCKET);
    }

    eprintln!(
        "crash rounds passed: {rounds}, requests acknowledged: {acked}, cut off by a kill: {in_doubt}"
    );

    // After the last restart: every file on disk belongs to a listed object.
    let c = srv.client();
    let listed = list_keys(&c, BUCKET).await;
    let mut on_disk: Vec<String> = srv
        .objects_on_disk(BUCKET)
        .iter()
        .map(|o| o.str_field("key").unwrap_or_default())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, listed, "one sidecar per listed object, no orphan");
    let before = listing(&c).await;
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "index verify clean: {report} {err}");
    assert!(srv.temp_files(BUCKET).is_empty());

    // A lost index comes back from the sidecars exactly.
    srv.rebuild_lost_index().await;
    srv.restart().await;
    assert_eq!(
        listing(&srv.client()).await,
        before,
        "rebuild reproduces the listing"
    );
    check_all(&srv, &mut keys, rounds + 1).await;
});
