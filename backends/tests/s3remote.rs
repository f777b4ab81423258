//! `S3Remote` against a real `moto_server` (PyPI `moto[server]`) started by each test on a free
//! port. Without `moto_server` on PATH the tests print why they skip; under
//! `ARTSTORE_TEST_REQUIRE_ALL=1` they fail instead.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use artstore_backends::s3remote::{MIN_PART_SIZE, part_rel_key};
use artstore_backends::{
    AttrJson, BackendError, ChecksumAlgorithm, S3Remote, S3RemoteConfig, StorageName, storage_name,
};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use md5::Md5;
use sha2::{Digest as _, Sha256};

// --- allocation accounting (the memory-bound test) ------------------------------------------

/// Counts live heap bytes of this test process and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Tests moving many MiB take turns, so that the memory test measures only its own upload.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// --- moto_server ----------------------------------------------------------------------------

fn require_all() -> bool {
    matches!(
        std::env::var("ARTSTORE_TEST_REQUIRE_ALL").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

fn find_on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// `moto_server` on PATH, or `None` after printing why the test is skipped.
fn moto_path() -> Option<PathBuf> {
    match find_on_path("moto_server") {
        Some(p) => Some(p),
        None if require_all() => {
            panic!("`moto_server` not found on PATH (ARTSTORE_TEST_REQUIRE_ALL=1)")
        }
        None => {
            eprintln!("skipping: `moto_server` not found on PATH (pip install 'moto[server]')");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A moto_server process of this test, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
    access_key: String,
    secret_key: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// A server accepting any credentials.
    async fn start() -> Option<Moto> {
        Self::spawn(&[]).await
    }

    async fn spawn(env: &[(&str, &str)]) -> Option<Moto> {
        let path = moto_path()?;
        let port = free_port();
        let mut cmd = Command::new(path);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("moto_server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: "testing".to_owned(),
            secret_key: "testing".to_owned(),
        };
        // Ready once it listens (python start-up takes a second or two).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(moto);
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A server that checks signatures against IAM access keys, with one key created for an
    /// IAM user allowed everything (`boto3`, installed with moto, does the IAM calls).
    async fn start_with_auth() -> Option<Moto> {
        // The first three requests (the IAM set-up below) go unauthenticated.
        let mut moto = Self::spawn(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]).await?;
        let script = format!(
            r#"
import boto3, json
iam = boto3.client("iam", endpoint_url="{}", region_name="us-east-1",
                   aws_access_key_id="x", aws_secret_access_key="x")
iam.create_user(UserName="element")
iam.put_user_policy(UserName="element", PolicyName="all", PolicyDocument=json.dumps(
    {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "*", "Resource": "*"}}]}}))
k = iam.create_access_key(UserName="element")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#,
            moto.endpoint
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "IAM set-up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut words = text.split_whitespace();
        moto.access_key = words.next().expect("access key").to_owned();
        moto.secret_key = words.next().expect("secret key").to_owned();
        Some(moto)
    }

    fn config(&self, bucket: &str, prefix: &str) -> S3RemoteConfig {
        S3RemoteConfig {
            endpoint: self.endpoint.clone(),
            region: "us-east-1".to_owned(),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            path_style: true,
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
            part_size: MIN_PART_SIZE,
            upload_concurrency: 2,
            ..S3RemoteConfig::default()
        }
    }

    /// A plain SDK client on the same server, to create buckets and look behind the backend.
    fn client(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "test",
        );
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .force_path_style(true)
            .credentials_provider(creds)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    async fn create_bucket(&self, bucket: &str) {
        self.client()
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket created");
    }

    /// Every key in the bucket, and every unfinished multipart upload.
    async fn everything(&self, bucket: &str) -> (Vec<String>, usize) {
        let c = self.client();
        let keys = c
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("list")
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        let uploads = c
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("list uploads")
            .uploads()
            .len();
        (keys, uploads)
    }

    /// Waits (bounded) until the bucket holds nothing: cleanup after a drop runs in a
    /// spawned task.
    async fn wait_empty(&self, bucket: &str) -> (Vec<String>, usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.everything(bucket).await;
            if (now.0.is_empty() && now.1 == 0) || Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A moto server with one bucket and an element under `el/` in it.
async fn setup(bucket: &str) -> Option<(Moto, S3Remote)> {
    let moto = Moto::start().await?;
    moto.create_bucket(bucket).await;
    let remote = S3Remote::connect(moto.config(bucket, "el/"))
        .await
        .expect("connect");
    Some((moto, remote))
}

// --- bodies ---------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (xorshift), generated chunk by chunk.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `data` as a body of uneven chunks.
fn body_of(
    data: &[u8],
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    let mut chunks = Vec::new();
    let mut off = 0;
    let mut n = 1000;
    while off < data.len() {
        let end = (off + n).min(data.len());
        chunks.push(Ok(Bytes::copy_from_slice(&data[off..end])));
        off = end;
        n = n * 3 % (700 << 10) + 1;
    }
    futures::stream::iter(chunks)
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn read_all(remote: &S3Remote, rel: &str, start: u64, len: u64) -> Vec<u8> {
    let mut s = remote
        .open_range(rel, start, len)
        .await
        .expect("open range");
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

fn name(key: &str) -> StorageName {
    storage_name(
        key,
        "tester",
        &uuid::Uuid::now_v7(),
        time::OffsetDateTime::now_utc(),
    )
}

fn attr_for(name: &StorageName, key: &str, data: &[u8]) -> AttrJson {
    let mut a = AttrJson::parse(
        format!(r#"{{"key": "{key}", "created_at": "2026-11-22 05:30:00+00:00"}}"#).as_bytes(),
    )
    .expect("minimal attr");
    a.bucket = "docs".to_owned();
    a.storage_filename = name.file_name.clone();
    a.storage_path = name.rel_path();
    a.file_size = data.len() as u64;
    a.etag = md5_hex(data);
    a.checksum = sha256_hex(data);
    a
}

/// Stages and commits `data` as object `key`.
async fn put(remote: &S3Remote, key: &str, data: &[u8]) -> StorageName {
    let n = name(key);
    let staged = remote.stage(&n, body_of(data), &[]).await.expect("stage");
    remote
        .commit(staged, &n, &attr_for(&n, key, data))
        .await
        .expect("commit");
    n
}

// --- tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_object_round_trip_with_digests_and_sidecar() {
    let Some((moto, remote)) = setup("small").await else {
        return;
    };
    let data = b"hello, remote world".to_vec();
    let n = name("reports/2026/hello.txt");
    let staged = remote
        .stage(
            &n,
            body_of(&data),
            &[ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Sha1],
        )
        .await
        .expect("stage");
    assert_eq!(staged.digests.size, data.len() as u64);
    assert_eq!(staged.digests.md5_hex(), md5_hex(&data));
    assert_eq!(staged.digests.sha256_hex(), sha256_hex(&data));
    let sha1 = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&data));
    assert_eq!(
        staged.digests.checksum(ChecksumAlgorithm::Sha1),
        Some(sha1.as_str())
    );
    assert!(staged.digests.checksum(ChecksumAlgorithm::Crc32c).is_some());
    let attr = attr_for(&n, "reports/2026/hello.txt", &data);
    remote.commit(staged, &n, &attr).await.expect("commit");

    // The same relative names as on disk, under the prefix.
    let (keys, uploads) = moto.everything("small").await;
    assert_eq!(
        keys,
        [
            format!("el/{}", n.rel_path()),
            format!("el/{}", n.attr_rel_path())
        ]
    );
    assert_eq!(uploads, 0);
    assert_eq!(
        remote.read_attr(&n.attr_rel_path()).await.expect("attr"),
        attr
    );
    assert_eq!(
        read_all(&remote, &n.rel_path(), 0, data.len() as u64).await,
        data
    );
    assert_eq!(
        remote.data_len(&n.rel_path()).await.expect("len"),
        Some(data.len() as u64)
    );
    let age = remote.file_age(&n.rel_path()).await.expect("age");
    assert!(age.is_some_and(|a| a < Duration::from_secs(600)), "{age:?}");
    let hashed = remote.hash_file(&n.rel_path()).await.expect("hash");
    assert_eq!(hashed.sha256_hex(), sha256_hex(&data));
    assert_eq!(hashed.md5_hex(), md5_hex(&data));

    // An empty body is an object too.
    let empty = put(&remote, "empty", b"").await;
    assert_eq!(
        remote.data_len(&empty.rel_path()).await.expect("len"),
        Some(0)
    );
    assert!(read_all(&remote, &empty.rel_path(), 0, 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_goes_as_remote_multipart_upload() {
    let _heavy = HEAVY.lock().await;
    let Some((moto, remote)) = setup("large").await else {
        return;
    };
    let data = pattern(7, 20 << 20);
    let n = put(&remote, "big.bin", &data).await;
    let head = moto
        .client()
        .head_object()
        .bucket("large")
        .key(format!("el/{}", n.rel_path()))
        .send()
        .await
        .expect("head");
    // 20 MiB in 5 MiB parts: a multipart ETag with 4 parts.
    assert!(
        head.e_tag()
            .is_some_and(|e| e.trim_matches('"').ends_with("-4")),
        "{:?}",
        head.e_tag()
    );
    assert_eq!(head.content_length(), Some(data.len() as i64));
    let hashed = remote.hash_file(&n.rel_path()).await.expect("hash");
    assert_eq!(hashed.sha256_hex(), sha256_hex(&data));
    assert_eq!(hashed.md5_hex(), md5_hex(&data));
    // A range across a part boundary.
    let start = (5 << 20) - 1000;
    assert_eq!(
        read_all(&remote, &n.rel_path(), start as u64, 3000).await,
        data[start..start + 3000]
    );
    // The scrub's paced re-read sees the same bytes.
    let mut rr = remote.reread(&n.rel_path()).await.expect("reread");
    assert_eq!(rr.len(), data.len() as u64);
    let mut total = 0;
    loop {
        let got = rr.next_chunk(3 << 20).await.expect("chunk");
        if got == 0 {
            break;
        }
        total += got;
    }
    assert_eq!(total, data.len());
    assert_eq!(rr.finish(), (data.len() as u64, sha256_hex(&data)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_sizes_and_missing_objects() {
    let Some((_moto, remote)) = setup("ranges").await else {
        return;
    };
    let data = pattern(3, 1000);
    let n = put(&remote, "r.bin", &data).await;
    let rel = n.rel_path();
    assert_eq!(read_all(&remote, &rel, 100, 50).await, data[100..150]);
    assert_eq!(read_all(&remote, &rel, 999, 1).await, data[999..]);
    assert!(read_all(&remote, &rel, 1000, 0).await.is_empty());
    let mut whole = remote
        .open_object_range(&rel, 1000, 0, 1000)
        .await
        .expect("whole");
    let mut got = Vec::new();
    while let Some(c) = whole.next().await {
        got.extend_from_slice(&c.expect("chunk"));
    }
    assert_eq!(got, data);

    for (start, len) in [(990, 20), (1000, 1), (2000, 10), (1001, 0)] {
        match remote.open_range(&rel, start, len).await {
            Err(BackendError::Io(e)) => {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof,
                    "{start}+{len}: {e}"
                )
            }
            Err(e) => panic!("{start}+{len}: {e}"),
            Ok(_) => panic!("{start}+{len}: a range beyond the end was served"),
        }
    }
    for (start, len) in [(0, 10), (0, 0), (5000, 10)] {
        match remote.open_object_range(&rel, 999, start, len).await {
            Err(BackendError::SizeMismatch {
                expected, actual, ..
            }) => assert_eq!((expected, actual), (999, 1000)),
            Err(e) => panic!("{start}+{len}: {e}"),
            Ok(_) => panic!("{start}+{len}: an object of the wrong size was served"),
        }
    }
    let missing = "2026/01/01/00/nothing.bin";
    assert!(matches!(
        remote.open_range(missing, 0, 1).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        remote.read_attr(&format!("{missing}.attr.json")).await,
        Err(BackendError::NotFound(_))
    ));
    assert_eq!(remote.data_len(missing).await.expect("len"), None);
    assert_eq!(remote.file_age(missing).await.expect("age"), None);
    // Names that would leave the prefix are refused before any request.
    for bad in ["../other/x", "/abs", "a//b", ""] {
        assert!(remote.open_range(bad, 0, 1).await.is_err(), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_rewrite_v1_and_delete() {
    let Some((moto, remote)) = setup("sidecars").await else {
        return;
    };
    let data = b"attr test".to_vec();
    let n = put(&remote, "a.txt", &data).await;
    let mut attr = remote.read_attr(&n.attr_rel_path()).await.expect("attr");
    attr.custom_attributes
        .insert("project".to_owned(), "apollo".to_owned());
    remote
        .write_attr(&n.attr_rel_path(), &attr)
        .await
        .expect("rewrite");
    assert_eq!(
        remote.read_attr(&n.attr_rel_path()).await.expect("attr"),
        attr
    );

    // A legacy v1 sidecar (written by the earlier implementation) reads as 2.0.
    moto.client()
        .put_object()
        .bucket("sidecars")
        .key("el/legacy.pdf.attr.json")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            br#"{"key": "x/legacy.pdf", "size_bytes": 3, "uploaded_by": "bob", "created_at": "2024-01-02 03:04:05"}"#,
        ))
        .send()
        .await
        .expect("put v1");
    let v1 = remote.read_attr("legacy.pdf.attr.json").await.expect("v1");
    assert_eq!(
        (
            v1.schema_version.as_str(),
            v1.file_size,
            v1.created_at.as_str()
        ),
        ("2.0", 3, "2024-01-02T03:04:05Z")
    );

    remote.delete(&n.rel_path()).await.expect("delete");
    remote.delete(&n.rel_path()).await.expect("delete again");
    assert_eq!(remote.data_len(&n.rel_path()).await.expect("len"), None);
    let (keys, _) = moto.everything("sidecars").await;
    assert_eq!(keys, ["el/legacy.pdf.attr.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_for_rebuild_recovery_and_quarantine() {
    let Some((moto, remote)) = setup("listing").await else {
        return;
    };
    let c = moto.client();
    for key in [
        "el/2026/11/21/23/a.txt",
        "el/2026/11/21/23/a.txt.attr.json",
        "el/2026/11/22/05/b.txt",
        "el/2026/11/22/05/b.txt.attr.json",
        "el/2026/11/22/06/c.attr.json",
        "el/flat.pdf.attr.json",
        "el/element.json",
        "el/.multipart/u1/1",
        "el/.multipart/u2/.tmp-x",
        // Another element sharing the bucket under its own prefix.
        "other/2026/11/22/05/z.txt.attr.json",
    ] {
        c.put_object()
            .bucket("listing")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
            .send()
            .await
            .expect("put");
    }
    let all = remote.sidecars(None).await.expect("sidecars");
    assert_eq!(
        all,
        [
            "2026/11/21/23/a.txt.attr.json",
            "2026/11/22/05/b.txt.attr.json",
            "2026/11/22/06/c.attr.json",
            "flat.pdf.attr.json"
        ]
    );
    let since = time::macros::datetime!(2026-11-22 05:30 UTC);
    assert_eq!(
        remote.sidecars(Some(since)).await.expect("since"),
        ["2026/11/22/05/b.txt.attr.json", "2026/11/22/06/c.attr.json"]
    );
    assert_eq!(
        remote.hour_dirs(None).await.expect("dirs"),
        ["2026/11/21/23", "2026/11/22/05", "2026/11/22/06"]
    );
    assert_eq!(
        remote
            .files_in(&["2026/11/22/05".to_owned()])
            .await
            .expect("files"),
        ["2026/11/22/05/b.txt", "2026/11/22/05/b.txt.attr.json"]
    );
    assert_eq!(
        remote.root_sidecars().await.expect("root"),
        ["flat.pdf.attr.json"]
    );
    assert_eq!(remote.upload_dirs().await.expect("uploads"), ["u1", "u2"]);
    let temps: Vec<String> = remote
        .temp_objects()
        .await
        .expect("temps")
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert_eq!(temps, [".multipart/u2/.tmp-x"]);
    // Younger than the age given: another node's upload may still be writing it.
    assert_eq!(
        remote
            .remove_temp_objects(Duration::from_secs(3600))
            .await
            .expect("keep"),
        0
    );
    assert_eq!(
        remote
            .remove_temp_objects(Duration::ZERO)
            .await
            .expect("remove"),
        1
    );
    assert!(remote.temp_objects().await.expect("temps").is_empty());

    let moved = remote
        .quarantine("2026/11/22/05/b.txt", "verify-1")
        .await
        .expect("quarantine");
    assert_eq!(moved, ".quarantine/verify-1/2026/11/22/05/b.txt");
    assert_eq!(
        remote
            .files_in(&["2026/11/22/05".to_owned()])
            .await
            .expect("files"),
        ["2026/11/22/05/b.txt.attr.json"]
    );
    assert_eq!(remote.data_len(&moved).await.expect("len"), Some(2));
    // The destination is never replaced.
    c.put_object()
        .bucket("listing")
        .key("el/2026/11/22/05/b.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"new"))
        .send()
        .await
        .expect("put");
    assert!(
        remote
            .quarantine("2026/11/22/05/b.txt", "verify-1")
            .await
            .is_err()
    );
    assert_eq!(
        remote.data_len("2026/11/22/05/b.txt").await.expect("len"),
        Some(3)
    );
    assert_eq!(remote.data_len(&moved).await.expect("len"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_and_assemble() {
    let _heavy = HEAVY.lock().await;
    let Some((moto, remote)) = setup("multipart").await else {
        return;
    };
    let parts = [
        pattern(1, 6 << 20),
        pattern(2, 5 << 20),
        pattern(3, 1 << 20),
    ];
    let mut part_digests = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as u32 + 1;
        let staged = remote
            .stage_part("up-1", n, body_of(p), &[ChecksumAlgorithm::Crc32])
            .await
            .expect("stage part");
        assert_eq!(staged.digests.md5_hex(), md5_hex(p));
        part_digests.push(staged.digests.md5);
        remote
            .commit_part(staged, "up-1", n)
            .await
            .expect("commit part");
    }
    // A retry of part 2 whose body fails leaves the committed part 2 as it was.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from(vec![9u8; 6 << 20])),
        Err(std::io::Error::other("client went away")),
    ]);
    match remote.stage_part("up-1", 2, failing, &[]).await {
        Err(BackendError::Body(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        remote
            .hash_file(&part_rel_key("up-1", 2))
            .await
            .expect("part 2")
            .sha256_hex(),
        sha256_hex(&parts[1])
    );
    // A good retry of part 3 replaces it.
    let part3 = pattern(4, 100_000);
    let staged = remote
        .stage_part("up-1", 3, body_of(&part3), &[])
        .await
        .expect("stage part");
    remote
        .commit_part(staged, "up-1", 3)
        .await
        .expect("commit part");
    assert_eq!(remote.upload_dirs().await.expect("dirs"), ["up-1"]);
    assert!(remote.temp_objects().await.expect("temps").is_empty());

    let whole: Vec<u8> = [&parts[0][..], &parts[1][..], &part3[..]].concat();
    let ranges: Vec<(String, u64, u64)> = [parts[0].len(), parts[1].len(), part3.len()]
        .iter()
        .enumerate()
        .map(|(i, len)| (part_rel_key("up-1", i as u32 + 1), 0, *len as u64))
        .collect();
    let n = name("assembled.bin");
    let staged = remote.assemble(&n, &ranges).await.expect("assemble");
    assert_eq!(staged.digests.size, whole.len() as u64);
    assert_eq!(staged.digests.sha256_hex(), sha256_hex(&whole));
    assert_eq!(staged.digests.md5_hex(), md5_hex(&whole));
    remote
        .commit(staged, &n, &attr_for(&n, "assembled.bin", &whole))
        .await
        .expect("commit");
    assert_eq!(
        remote
            .hash_file(&n.rel_path())
            .await
            .expect("hash")
            .sha256_hex(),
        sha256_hex(&whole)
    );
    remote.remove_upload("up-1").await.expect("remove upload");
    remote.remove_upload("up-1").await.expect("remove again");
    assert!(remote.upload_dirs().await.expect("dirs").is_empty());
    let (keys, uploads) = moto.everything("multipart").await;
    assert_eq!(
        keys.len(),
        2,
        "only the object and its sidecar stay: {keys:?}"
    );
    assert_eq!(uploads, 0);

    // A part under 5 MiB that is not the last one cannot be a remote part.
    let small = [
        (part_rel_key("up-2", 1), 0, 10),
        (part_rel_key("up-2", 2), 0, 10),
    ];
    assert!(remote.assemble(&name("x"), &small).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_leave_nothing_remote() {
    let _heavy = HEAVY.lock().await;
    let Some((moto, remote)) = setup("dropped").await else {
        return;
    };
    // Staged and dropped without commit: single PutObject, then remote multipart.
    for len in [1000, 11 << 20] {
        let data = pattern(5, len);
        let staged = remote
            .stage(&name("gone.bin"), body_of(&data), &[])
            .await
            .expect("stage");
        drop(staged);
        assert_eq!(moto.wait_empty("dropped").await, (vec![], 0), "{len} bytes");
    }
    // A body that fails after some parts were sent: the error path aborts at once.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from(vec![1u8; 12 << 20])),
        Err(std::io::Error::other("reset")),
    ]);
    match remote.stage(&name("broken.bin"), failing, &[]).await {
        Err(BackendError::Body(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(moto.everything("dropped").await, (vec![], 0));
    // The request future itself dropped mid-body (a client that stalls and is cut off).
    let stalled = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(vec![
        2u8;
        11 << 20
    ]))])
    .chain(futures::stream::pending());
    let cut = tokio::time::timeout(
        Duration::from_secs(3),
        remote.stage(&name("stalled.bin"), stalled, &[]),
    )
    .await;
    assert!(cut.is_err(), "the stalled body cannot finish");
    assert_eq!(moto.wait_empty("dropped").await, (vec![], 0));
    // A sidecar that cannot be written takes the staged data with it.
    let n = name("no-sidecar.bin");
    let staged = remote
        .stage(&n, body_of(b"data"), &[])
        .await
        .expect("stage");
    let mut huge = attr_for(&n, "no-sidecar.bin", b"data");
    huge.description = Some("x".repeat(5000));
    assert!(matches!(
        remote.commit(staged, &n, &huge).await,
        Err(BackendError::AttrTooLarge { .. })
    ));
    assert_eq!(moto.wait_empty("dropped").await, (vec![], 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_while_streaming() {
    let _heavy = HEAVY.lock().await;
    let Some((_moto, remote)) = setup("memory").await else {
        return;
    };
    const LEN: usize = 64 << 20;
    const CHUNK: usize = 64 << 10;
    // Generated as it is sent: no Vec of the body exists.
    let body = futures::stream::iter(0..LEN / CHUNK)
        .map(|i| Ok::<_, std::io::Error>(Bytes::from(pattern(i as u64 + 11, CHUNK))));
    let mut expected = Sha256::new();
    for i in 0..LEN / CHUNK {
        expected.update(pattern(i as u64 + 11, CHUNK));
    }
    let expected = hex::encode(expected.finalize());

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let n = name("stream.bin");
    let staged = remote.stage(&n, body, &[]).await.expect("stage");
    let up_peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert_eq!(staged.digests.sha256_hex(), expected);
    remote
        .commit(staged, &n, &attr_for(&n, "stream.bin", b""))
        .await
        .expect("commit");

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut s = remote
        .open_object_range(&n.rel_path(), LEN as u64, 0, LEN as u64)
        .await
        .expect("open");
    let mut h = Sha256::new();
    let mut got = 0;
    while let Some(c) = s.next().await {
        let c = c.expect("chunk");
        got += c.len();
        h.update(&c);
    }
    let down_peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert_eq!((got, hex::encode(h.finalize())), (LEN, expected));
    eprintln!(
        "64 MiB through 5 MiB parts, 2 in flight: peak extra heap {} MiB up, {} MiB down",
        up_peak >> 20,
        down_peak >> 20
    );
    // (2 in flight + 1 filling) × 5 MiB, plus client buffers; far below the 64 MiB body.
    assert!(up_peak < 32 << 20, "upload peak {up_peak} bytes");
    assert!(down_peak < 16 << 20, "download peak {down_peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_json_shared_bucket_and_element_removal() {
    let Some((moto, a)) = setup("shared").await else {
        return;
    };
    let b = S3Remote::connect(moto.config("shared", "elements/b/"))
        .await
        .expect("connect b");
    a.create_element(br#"{"name":"a"}"#)
        .await
        .expect("create a");
    b.create_element(br#"{"name":"b"}"#)
        .await
        .expect("create b");
    assert_eq!(
        a.read_element_json().await.expect("read"),
        Some(br#"{"name":"a"}"#.to_vec())
    );
    // A prefix that already holds objects is not a new element.
    assert!(a.create_element(br#"{"name":"again"}"#).await.is_err());
    assert_eq!(
        a.read_element_json().await.expect("read"),
        Some(br#"{"name":"a"}"#.to_vec())
    );
    a.write_element_json(br#"{"name":"a","mode":"ro"}"#)
        .await
        .expect("rewrite");
    put(&a, "one.txt", b"1").await;
    let kept = put(&b, "two.txt", b"2").await;
    // An unfinished remote multipart upload under the prefix goes too.
    moto.client()
        .create_multipart_upload()
        .bucket("shared")
        .key("el/2026/01/01/00/half.bin")
        .send()
        .await
        .expect("create upload");
    assert_eq!(a.incomplete_uploads().await.expect("uploads").len(), 1);
    assert_eq!(b.sidecars(None).await.expect("b"), [kept.attr_rel_path()]);

    a.remove_element().await.expect("remove a");
    assert_eq!(a.read_element_json().await.expect("read"), None);
    assert!(a.is_empty().await.expect("empty"));
    assert!(a.incomplete_uploads().await.expect("uploads").is_empty());
    assert_eq!(b.sidecars(None).await.expect("b"), [kept.attr_rel_path()]);
    assert_eq!(
        b.read_element_json().await.expect("read"),
        Some(br#"{"name":"b"}"#.to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refuses_wrong_endpoint_bucket_or_credentials() {
    let Some(moto) = Moto::start_with_auth().await else {
        return;
    };
    moto.create_bucket("real").await;
    // moto checks signatures wrongly for a `prefix=` query holding '/' (boto3 fails there
    // too), so the element here sits at the bucket root.
    S3Remote::connect(moto.config("real", ""))
        .await
        .expect("right settings connect");

    let remote_error = |r: Result<S3Remote, BackendError>| match r {
        Err(e @ BackendError::Remote { .. }) => e.to_string(),
        Err(e) => panic!("not the remote's error: {e:?}"),
        Ok(_) => panic!("wrong settings accepted"),
    };
    let msg = remote_error(S3Remote::connect(moto.config("nope", "")).await);
    assert!(msg.contains("NoSuchBucket"), "{msg}");
    assert!(
        msg.contains(&moto.endpoint) && msg.contains("nope"),
        "{msg}"
    );

    let mut cfg = moto.config("real", "");
    cfg.access_key_id = "AKIAWRONGWRONGWRONG0".to_owned();
    let msg = remote_error(S3Remote::connect(cfg).await);
    assert!(msg.contains("InvalidAccessKeyId"), "{msg}");

    let mut cfg = moto.config("real", "");
    cfg.secret_access_key = "wrong-secret".to_owned();
    let msg = remote_error(S3Remote::connect(cfg).await);
    assert!(msg.contains("SignatureDoesNotMatch"), "{msg}");

    // Nothing listens there: refused at once, typed as unreachable.
    let mut cfg = moto.config("real", "p/");
    cfg.endpoint = format!("http://127.0.0.1:{}", free_port());
    cfg.max_attempts = 1;
    match S3Remote::connect(cfg.clone()).await {
        Err(BackendError::RemoteUnreachable {
            endpoint, bucket, ..
        }) => assert_eq!((endpoint, bucket.as_str()), (cfg.endpoint, "real")),
        other => panic!("{other:?}"),
    }

    // Settings no request could succeed with are refused before any is sent.
    for (prefix, endpoint) in [
        ("p", "http://x"),
        ("/p/", "http://x"),
        ("a/../b/", "http://x"),
        ("", "ftp://x"),
    ] {
        let mut cfg = moto.config("real", prefix);
        cfg.endpoint = endpoint.to_owned();
        assert!(
            matches!(S3Remote::connect(cfg).await, Err(BackendError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidInput),
            "{prefix:?} {endpoint:?}"
        );
    }
    let (keys, _) = moto.everything("real").await;
    assert!(keys.is_empty(), "connecting creates nothing: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_endpoint_fails_within_the_configured_timeout() {
    // Accepts connections (the kernel does) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let cfg = S3RemoteConfig {
        endpoint: format!("http://{}", silent.local_addr().expect("addr")),
        bucket: "b".to_owned(),
        access_key_id: "x".to_owned(),
        secret_access_key: "y".to_owned(),
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(800),
        max_attempts: 2,
        ..S3RemoteConfig::default()
    };
    let started = Instant::now();
    let r = S3Remote::connect(cfg).await;
    let took = started.elapsed();
    match r {
        Err(BackendError::RemoteUnreachable { message, .. }) => {
            assert!(
                message.contains("timed out") || message.contains("timeout"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Two attempts of 0.8 s and a backoff of at most 5 s between them.
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(8),
        "{took:?}"
    );
}

/// A TCP front for moto whose first `failures` connections are answered `503 SlowDown` (and
/// closed); later ones are forwarded. Returns its endpoint and the count of connections.
async fn flaky_front(moto: &Moto, failures: usize) -> (String, std::sync::Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = moto.endpoint.trim_start_matches("http://").to_owned();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if n >= failures {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                    }
                    return;
                }
                // Read the request head, answer as a throttling S3 would, close.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (endpoint, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_are_retried_with_backoff() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    moto.create_bucket("retry").await;
    // Two refusals, three attempts: the third gets through.
    let (endpoint, count) = flaky_front(&moto, 2).await;
    let mut cfg = moto.config("retry", "el/");
    cfg.endpoint = endpoint;
    cfg.max_attempts = 3;
    let remote = S3Remote::connect(cfg).await.expect("connect after retries");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let n = put(&remote, "after-retries.txt", b"ok").await;
    assert_eq!(remote.data_len(&n.rel_path()).await.expect("len"), Some(2));

    // More refusals than attempts: the remote's error, typed, naming endpoint and bucket.
    let (endpoint, count) = flaky_front(&moto, 5).await;
    let mut cfg = moto.config("retry", "el/");
    cfg.endpoint = endpoint.clone();
    cfg.max_attempts = 2;
    match S3Remote::connect(cfg).await {
        Err(BackendError::Remote {
            endpoint: e,
            bucket,
            message,
        }) => {
            assert_eq!((e, bucket.as_str()), (endpoint, "retry"));
            assert!(message.contains("SlowDown"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
}
