use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::attr::{HttpHeaders, SCHEMA_VERSION};
use crate::digest::{Digests, Hasher};
use crate::naming::storage_name;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

/// The data as a body cut into chunks of the given sizes (cycled).
fn body(
    data: &[u8],
    sizes: &[usize],
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + Unpin {
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - pos);
        chunks.push(Ok(Bytes::copy_from_slice(&data[pos..pos + n])));
        pos += n;
        i += 1;
    }
    stream::iter(chunks)
}

fn expected(data: &[u8], extra: &[ChecksumAlgorithm]) -> Digests {
    let mut h = Hasher::new(extra);
    h.update(data);
    h.finalize()
}

fn attr_for(name: &StorageName, key: &str, d: &Digests) -> AttrJson {
    AttrJson {
        schema_version: SCHEMA_VERSION.to_owned(),
        file_id: "id".to_owned(),
        bucket: "b".to_owned(),
        key: key.to_owned(),
        original_filename: key.rsplit('/').next().unwrap_or(key).to_owned(),
        storage_filename: name.file_name.clone(),
        storage_path: name.rel_path(),
        file_size: d.size,
        content_type: "application/octet-stream".to_owned(),
        etag: d.md5_hex(),
        checksum: d.sha256_hex(),
        created_at: "2026-11-22T05:00:00Z".to_owned(),
        updated_at: "2026-11-22T05:00:00Z".to_owned(),
        created_by_id: "1".to_owned(),
        created_by_username: "svc".to_owned(),
        description: None,
        version: None,
        http_headers: HttpHeaders::default(),
        custom_attributes: BTreeMap::new(),
        tags: BTreeMap::new(),
        checksums: d.checksums_by_name(),
        parts_count: None,
        part_sizes: Vec::new(),
        restore: None,
    }
}

fn name(key: &str) -> StorageName {
    storage_name(
        key,
        "svc",
        &Uuid::now_v7(),
        datetime!(2026-11-22 05:06:07 UTC),
    )
}

/// Every file below `dir`, as paths relative to it.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn temp_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.rsplit('/').next().unwrap().starts_with(".tmp-"))
        .collect()
}

async fn read_all(s: ObjectStream) -> (Vec<u8>, Vec<usize>) {
    let chunks: Vec<Bytes> = s.try_collect().await.unwrap();
    let sizes = chunks.iter().map(Bytes::len).collect();
    (chunks.concat(), sizes)
}

async fn setup() -> (tempfile::TempDir, LocalFs) {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFs::new(dir.path().join("elements"));
    fs.create_element("b", br#"{"name":"b"}"#).await.unwrap();
    (dir, fs)
}

async fn put(fs: &LocalFs, key: &str, data: &[u8], sizes: &[usize]) -> (StorageName, Digests) {
    let n = name(key);
    let staged = fs
        .stage("b", &n.rel_dir, body(data, sizes), &[])
        .await
        .unwrap();
    let d = staged.digests.clone();
    fs.commit(staged, "b", &n, &attr_for(&n, key, &d))
        .await
        .unwrap();
    (n, d)
}

#[tokio::test]
async fn elements() {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFs::new(dir.path().join("elements"));
    fs.create_element("inv", b"{\"v\":1}").await.unwrap();
    let ej = fs.element_root("inv").join("element.json");
    assert_eq!(std::fs::read(&ej).unwrap(), b"{\"v\":1}");
    fs.write_element_json("inv", b"{\"v\":2}").await.unwrap();
    assert_eq!(std::fs::read(&ej).unwrap(), b"{\"v\":2}");
    assert!(temp_files(dir.path()).is_empty());
    fs.remove_element("inv").await.unwrap();
    assert!(!fs.element_root("inv").exists());
    fs.remove_element("inv").await.unwrap();
    for bad in ["", "..", "a/b", ".multipart", "/abs"] {
        assert!(fs.create_element(bad, b"{}").await.is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn small_object_round_trip() {
    let (_dir, fs) = setup().await;
    let data = data(300_000);
    let n = name("docs/report.pdf");
    let extra = [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Sha256];
    let staged = fs
        .stage("b", &n.rel_dir, body(&data, &[1000, 17, 65536]), &extra)
        .await
        .unwrap();
    assert_eq!(staged.digests, expected(&data, &extra));
    let attr = attr_for(&n, "docs/report.pdf", &staged.digests);
    fs.commit(staged, "b", &n, &attr).await.unwrap();

    let root = fs.element_root("b");
    assert_eq!(
        files(&root),
        vec![n.rel_path(), n.attr_rel_path(), "element.json".to_owned()]
    );
    assert_eq!(std::fs::read(root.join(n.rel_path())).unwrap(), data);
    assert_eq!(fs.read_attr("b", &n.attr_rel_path()).await.unwrap(), attr);

    let (all, _) = read_all(
        fs.open_range("b", &n.rel_path(), 0, data.len() as u64)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(all, data);
    let (part, _) = read_all(fs.open_range("b", &n.rel_path(), 100, 1000).await.unwrap()).await;
    assert_eq!(part, &data[100..1100]);
    let (empty, sizes) = read_all(fs.open_range("b", &n.rel_path(), 5, 0).await.unwrap()).await;
    assert!(empty.is_empty() && sizes.is_empty());
}

#[tokio::test]
async fn empty_object() {
    let (_dir, fs) = setup().await;
    let (n, d) = put(&fs, "empty", b"", &[1]).await;
    assert_eq!(d, expected(b"", &[]));
    assert_eq!(
        std::fs::metadata(fs.element_root("b").join(n.rel_path()))
            .unwrap()
            .len(),
        0
    );
    let (all, _) = read_all(fs.open_range("b", &n.rel_path(), 0, 0).await.unwrap()).await;
    assert!(all.is_empty());
}

#[tokio::test]
async fn large_object_streams_in_big_chunks() {
    let (_dir, fs) = setup().await;
    let data = data(5 * 1024 * 1024 + 12345);
    let extra = ChecksumAlgorithm::ALL;
    let n = name("big.bin");
    // Mix of tiny, medium and large (direct) chunks.
    let staged = fs
        .stage(
            "b",
            &n.rel_dir,
            body(&data, &[16 * 1024, 3, 700_000, 2 * 1024 * 1024, 99_999]),
            &extra,
        )
        .await
        .unwrap();
    assert_eq!(staged.digests, expected(&data, &extra));
    let attr = attr_for(&n, "big.bin", &staged.digests);
    fs.commit(staged, "b", &n, &attr).await.unwrap();
    assert_eq!(
        std::fs::read(fs.element_root("b").join(n.rel_path())).unwrap(),
        data
    );

    let len = data.len() as u64;
    let (all, sizes) = read_all(fs.open_range("b", &n.rel_path(), 0, len).await.unwrap()).await;
    assert_eq!(all, data);
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&s| s == 1 << 20),
        "{sizes:?}"
    );

    // A range across chunk boundaries.
    let (start, rlen) = (1_000_000u64, 2_500_000u64);
    let (part, _) = read_all(
        fs.open_range("b", &n.rel_path(), start, rlen)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(part, &data[start as usize..(start + rlen) as usize]);
    // The last byte.
    let (last, _) = read_all(fs.open_range("b", &n.rel_path(), len - 1, 1).await.unwrap()).await;
    assert_eq!(last, &data[data.len() - 1..]);
}

#[tokio::test]
async fn open_range_errors() {
    let (_dir, fs) = setup().await;
    let (n, d) = put(&fs, "x", b"hello", &[5]).await;
    assert!(matches!(
        fs.open_range("b", &n.rel_path(), 0, d.size + 1).await,
        Err(BackendError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof
    ));
    assert!(
        fs.open_range("b", &n.rel_path(), u64::MAX, 2)
            .await
            .is_err()
    );
    assert!(matches!(
        fs.open_range("b", "2026/01/01/00/nope", 0, 1).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        fs.read_attr("b", "2026/01/01/00/nope.attr.json").await,
        Err(BackendError::NotFound(_))
    ));
    // Relative paths cannot leave the element root.
    assert!(fs.open_range("b", "../b/element.json", 0, 1).await.is_err());
    assert!(fs.open_range("b", "/etc/passwd", 0, 1).await.is_err());
    assert!(fs.read_attr("b", "2026/../../x").await.is_err());
}

fn failing_body(
    good: usize,
    chunk: usize,
) -> impl Stream<Item = Result<Bytes, String>> + Send + Unpin {
    let d = data(good);
    let mut items: Vec<Result<Bytes, String>> = d
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    items.push(Err("connection reset".to_owned()));
    stream::iter(items)
}

#[tokio::test]
async fn body_error_leaves_nothing() {
    let (_dir, fs) = setup().await;
    let root = fs.element_root("b");
    for (good, chunk) in [
        (0, 1),
        (1000, 100),
        (3 * 1024 * 1024, 64 * 1024),
        (4 << 20, 1 << 20),
    ] {
        let n = name("broken");
        match fs
            .stage("b", &n.rel_dir, failing_body(good, chunk), &[])
            .await
        {
            Err(BackendError::Body(msg)) => assert!(msg.contains("connection reset")),
            other => panic!("expected a body error, got {other:?}"),
        }
        assert!(temp_files(&root).is_empty(), "{:?}", files(&root));
    }
}

#[tokio::test]
async fn dropped_staged_and_cancelled_stage_leave_nothing() {
    let (_dir, fs) = setup().await;
    let root = fs.element_root("b");
    let staged = fs
        .stage("b", "2026/11/22/05", body(&data(10), &[10]), &[])
        .await
        .unwrap();
    assert_eq!(temp_files(&root).len(), 1);
    drop(staged);
    assert!(temp_files(&root).is_empty());

    // A body that stalls forever after 3 MiB: the upload is cancelled by dropping the future.
    let d = data(3 << 20);
    let stalled = body(&d, &[1 << 20]).chain(stream::pending());
    let fut = fs.stage("b", "2026/11/22/05", stalled, &[]);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), fut)
            .await
            .is_err()
    );
    // Jobs already running may still finish, but cannot recreate the file.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(temp_files(&root).is_empty(), "{:?}", files(&root));
}

#[tokio::test]
async fn commit_with_oversized_attr_writes_nothing() {
    let (_dir, fs) = setup().await;
    let n = name("k");
    let staged = fs
        .stage("b", &n.rel_dir, body(b"abc", &[3]), &[])
        .await
        .unwrap();
    let mut attr = attr_for(&n, "k", &staged.digests);
    attr.description = Some("x".repeat(5000));
    assert!(matches!(
        fs.commit(staged, "b", &n, &attr).await,
        Err(BackendError::AttrTooLarge { .. })
    ));
    assert_eq!(
        files(&fs.element_root("b")),
        vec!["element.json".to_owned()]
    );
}

#[tokio::test]
async fn commit_into_another_hour_directory() {
    // The name may be computed after staging, when the hour has changed.
    let (_dir, fs) = setup().await;
    let n = name("k.txt");
    let staged = fs
        .stage("b", "2026/11/22/04", body(b"abc", &[3]), &[])
        .await
        .unwrap();
    let attr = attr_for(&n, "k.txt", &staged.digests);
    fs.commit(staged, "b", &n, &attr).await.unwrap();
    let root = fs.element_root("b");
    assert_eq!(std::fs::read(root.join(n.rel_path())).unwrap(), b"abc");
    assert!(temp_files(&root).is_empty());
}

#[tokio::test]
async fn write_attr_and_delete() {
    let (_dir, fs) = setup().await;
    let (n, d) = put(&fs, "a/b.txt", b"payload", &[2]).await;
    let mut attr = fs.read_attr("b", &n.attr_rel_path()).await.unwrap();
    attr.custom_attributes
        .insert("k".to_owned(), "v".to_owned());
    attr.updated_at = "2026-11-23T00:00:00Z".to_owned();
    fs.write_attr("b", &n.attr_rel_path(), &attr).await.unwrap();
    assert_eq!(fs.read_attr("b", &n.attr_rel_path()).await.unwrap(), attr);
    assert_eq!(attr.etag, d.md5_hex());

    let mut big = attr.clone();
    big.description = Some("x".repeat(5000));
    assert!(fs.write_attr("b", &n.attr_rel_path(), &big).await.is_err());
    assert_eq!(fs.read_attr("b", &n.attr_rel_path()).await.unwrap(), attr);

    fs.delete("b", &n.rel_path()).await.unwrap();
    assert_eq!(
        files(&fs.element_root("b")),
        vec!["element.json".to_owned()]
    );
    // Deleting again is fine.
    fs.delete("b", &n.rel_path()).await.unwrap();
    fs.delete("b", "2030/01/01/00/never").await.unwrap();
}

#[tokio::test]
async fn reads_v1_sidecars() {
    let (_dir, fs) = setup().await;
    let dir = fs.element_root("b").join("2024/01/02/03");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("x.attr.json"),
        br#"{"key":"x","size_bytes":"3","mime_type":"text/plain","created_at":"2024-01-02 03:04:05","metadata":{"a":"b"}}"#,
    )
    .unwrap();
    let a = fs
        .read_attr("b", "2024/01/02/03/x.attr.json")
        .await
        .unwrap();
    assert_eq!(a.schema_version, "2.0");
    assert_eq!(a.file_size, 3);
    assert_eq!(a.content_type, "text/plain");
    assert_eq!(a.created_at, "2024-01-02T03:04:05Z");
    assert_eq!(a.custom_attributes.get("a").map(String::as_str), Some("b"));
}

#[tokio::test]
async fn multipart_upload() {
    let (_dir, fs) = setup().await;
    let upload = Uuid::new_v4().to_string();
    let p1 = data(5 << 20);
    let p2_old = data(1000);
    let p2 = data(3 << 20).into_iter().rev().collect::<Vec<u8>>();
    let p3 = b"tail".to_vec();

    let mut part_md5s = Vec::new();
    for (num, bytes) in [(1u32, &p1), (2, &p2_old), (2, &p2), (3, &p3)] {
        let staged = fs
            .stage_part(
                "b",
                &upload,
                num,
                body(bytes, &[64 * 1024]),
                &[ChecksumAlgorithm::Crc32c],
            )
            .await
            .unwrap();
        assert_eq!(
            staged.digests,
            expected(bytes, &[ChecksumAlgorithm::Crc32c])
        );
        part_md5s.push(staged.digests.md5);
        fs.commit_part(staged, "b", &upload, num).await.unwrap();
    }
    assert_eq!(std::fs::read(fs.part_path("b", &upload, 2)).unwrap(), p2);
    let upload_dir = fs
        .part_path("b", &upload, 1)
        .parent()
        .unwrap()
        .to_path_buf();
    assert_eq!(files(&upload_dir), vec!["1", "2", "3"]);

    let parts: Vec<(PathBuf, u64, u64)> = [(1u32, &p1), (2, &p2), (3, &p3)]
        .iter()
        .map(|(n, b)| (fs.part_path("b", &upload, *n), 0, b.len() as u64))
        .collect();
    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();
    let n = name("assembled.bin");
    let staged = fs.assemble("b", &n.rel_dir, &parts).await.unwrap();
    assert_eq!(staged.digests, expected(&whole, &[]));
    let mut attr = attr_for(&n, "assembled.bin", &staged.digests);
    attr.etag = "whatever-3".to_owned();
    attr.parts_count = Some(3);
    fs.commit(staged, "b", &n, &attr).await.unwrap();
    let (read, _) = read_all(
        fs.open_range("b", &n.rel_path(), 0, whole.len() as u64)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read, whole);

    // Sub-ranges of parts also work (e.g. UploadPartCopy-style reuse).
    let staged = fs
        .assemble(
            "b",
            &n.rel_dir,
            &[
                (fs.part_path("b", &upload, 1), 10, 20),
                (fs.part_path("b", &upload, 3), 1, 2),
            ],
        )
        .await
        .unwrap();
    let mut want = p1[10..30].to_vec();
    want.extend_from_slice(b"ai");
    assert_eq!(staged.digests, expected(&want, &[]));
    drop(staged);

    // A missing part fails and leaves nothing.
    let bad = [
        (fs.part_path("b", &upload, 1), 0, 10),
        (fs.part_path("b", &upload, 9), 0, 10),
    ];
    assert!(matches!(
        fs.assemble("b", &n.rel_dir, &bad).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(temp_files(&fs.element_root("b")).is_empty());

    fs.remove_upload("b", &upload).await.unwrap();
    assert!(!upload_dir.exists());
    fs.remove_upload("b", &upload).await.unwrap();
}

#[tokio::test]
async fn upload_ids_stay_inside_the_multipart_dir() {
    let (_dir, fs) = setup().await;
    let mp = fs.element_root("b").join(".multipart");
    for id in ["..", ".", "../../x", "a/b", ""] {
        let p = fs.part_path("b", id, 1);
        assert_eq!(p.parent().unwrap().parent().unwrap(), mp, "{id:?} -> {p:?}");
    }
}

#[tokio::test]
async fn removes_leftover_temp_files() {
    let (dir, fs) = setup().await;
    let (n, _) = put(&fs, "keep.txt", b"keep", &[4]).await;
    let root = fs.element_root("b");
    let hour = root.join(&n.rel_dir);
    std::fs::write(hour.join(".tmp-1"), b"x").unwrap();
    std::fs::write(root.join(".tmp-2"), b"x").unwrap();
    std::fs::create_dir_all(root.join(".multipart/u")).unwrap();
    std::fs::write(root.join(".multipart/u/.tmp-3"), b"x").unwrap();
    std::fs::write(root.join(".multipart/u/1"), b"x").unwrap();
    // A key that looks like a temp file is stored under a safe name.
    let (n2, _) = put(&fs, ".tmp-evil", b"data", &[4]).await;
    assert!(!n2.file_name.starts_with('.'));

    assert_eq!(fs.remove_temp_files().await.unwrap(), 3);
    assert!(temp_files(dir.path()).is_empty());
    assert!(root.join(n.rel_path()).exists());
    assert!(root.join(n2.rel_path()).exists());
    assert!(root.join(".multipart/u/1").exists());
    assert_eq!(fs.remove_temp_files().await.unwrap(), 0);
    assert_eq!(
        LocalFs::new(dir.path().join("nope"))
            .remove_temp_files()
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn object_stream_is_send_sync_static() {
    fn check<T: Send + Sync + 'static>(_: &T) {}
    let (_dir, fs) = setup().await;
    let (n, _) = put(&fs, "k", b"abc", &[1]).await;
    let s = fs.open_range("b", &n.rel_path(), 0, 3).await.unwrap();
    check(&s);
    // The stage future can be spawned.
    let fs2 = fs.clone();
    let h = tokio::spawn(async move {
        fs2.stage("b", "x", body(b"abc", &[1]), &[])
            .await
            .map(|s| s.digests.size)
    });
    assert_eq!(h.await.unwrap().unwrap(), 3);
}
