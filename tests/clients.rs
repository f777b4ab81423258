//! Real clients against the real binary (issue 2, item 9): aws-cli, rclone and boto3, each run as a
//! subprocess with its own temporary HOME and config, against SQLite and PostgreSQL.
//!
//! Each test skips (prints why) when its tool is missing, unless `ARTSTORE_TEST_REQUIRE_ALL=1`.
//! A failing tool command panics with the command line, its exit status, stdout and stderr.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Running tools
// ---------------------------------------------------------------------------------------------

/// A scratch area for one test: a temp HOME for the tools (so no ~/.aws, ~/.config/rclone or
/// AWS_* of the machine leaks in) and a work dir for files.
struct Tools {
    tmp: tempfile::TempDir,
    endpoint: String,
    env: Vec<(String, String)>,
}

/// The result of a finished tool run.
struct Run {
    cmdline: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "$ {}\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.status,
            tail(&self.stdout, 12_000),
            tail(&self.stderr, 12_000)
        )
    }
    /// Panics with the full description unless the tool exited 0.
    fn ok(self) -> Run {
        assert!(
            self.status.success(),
            "client command failed:\n{}",
            self.describe()
        );
        self
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

impl Tools {
    fn new(srv: &Server) -> Tools {
        let tmp = tempfile::Builder::new()
            .prefix("artstore-clients-")
            .tempdir()
            .expect("tempdir");
        for d in ["home", "home/.config", "home/.cache", "work"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        Tools {
            tmp,
            endpoint: srv.s3_url(),
            env: srv.tool_env(),
        }
    }

    /// An extra environment variable for every later command.
    fn set_env(&mut self, k: &str, v: &str) {
        self.env.push((k.to_string(), v.to_string()));
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// Work directory for local files.
    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// A command with a clean environment for S3 tools: no AWS_* / RCLONE_* of the machine
    /// (AWS_CA_BUNDLE in particular breaks rclone), temp HOME and config locations, the server's
    /// credentials, region us-east-1 and endpoint.
    fn command(&self, program: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("RCLONE_") || k.starts_with("BOTO_") {
                c.env_remove(k.as_ref());
            }
        }
        let home = self.home();
        c.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("AWS_CONFIG_FILE", home.join(".aws/config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.current_dir(self.work())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run<I, S>(&self, program: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let cmdline = std::iter::once(program.to_string())
            .chain(args.iter().map(|a| shell_quote(&a.to_string_lossy())))
            .collect::<Vec<_>>()
            .join(" ");
        let started = std::time::Instant::now();
        let out = self
            .command(program)
            .args(&args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
        eprintln!(
            "[{:>6.1}s] {cmdline} → {}",
            started.elapsed().as_secs_f64(),
            out.status
        );
        Run {
            cmdline,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `aws --endpoint-url … <args>`, must succeed; returns stdout.
    /// For `s3 cp|sync|mv`, `--no-progress` is added, and progress updates (lines ended by
    /// `\r`) are split off, so that every `upload: …` / `delete: …` line stands alone.
    async fn aws(&self, args: &[&str]) -> String {
        let mut full = vec!["--endpoint-url", self.endpoint.as_str()];
        full.extend_from_slice(args);
        if args.first() == Some(&"s3") && matches!(args.get(1), Some(&("cp" | "sync" | "mv"))) {
            full.push("--no-progress");
        }
        let out = self.run("aws", &full).await.ok().stdout;
        out.split(['\r', '\n'])
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `aws … s3api <args> --output json`, parsed.
    async fn s3api(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["s3api"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--output", "json"]);
        let out = self.aws(&full).await;
        if out.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("aws s3api {args:?}: not JSON ({e}):\n{out}"))
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether `python3 -c "import <module>"` works; otherwise skip (or panic under
/// ARTSTORE_TEST_REQUIRE_ALL=1), like `require_tool`.
fn require_python_module(module: &str) -> bool {
    if !require_tool("python3") {
        return false;
    }
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if require_all() {
        panic!(
            "required python module `{module}` cannot be imported (ARTSTORE_TEST_REQUIRE_ALL=1)"
        );
    }
    eprintln!("skipping: python module `{module}` cannot be imported");
    false
}

// ---------------------------------------------------------------------------------------------
// Local files
// ---------------------------------------------------------------------------------------------

/// splitmix64: the seeded PRNG for large files (streamed, never held in memory).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Writes `len` pseudo-random bytes from `seed` to `path`; returns their SHA-256 (hex).
fn write_prng_file(path: &Path, len: usize, seed: u64) -> String {
    use sha2::Digest;
    let mut rng = SplitMix(seed);
    let mut hasher = sha2::Sha256::new();
    let mut f = std::io::BufWriter::with_capacity(MIB, std::fs::File::create(path).unwrap());
    let mut buf = vec![0u8; MIB];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        for chunk in buf[..n].chunks_mut(8) {
            let v = rng.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        hasher.update(&buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
    hex::encode(hasher.finalize())
}

/// SHA-256 (hex) of a file, streamed.
fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; MIB];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}

/// Writes a file (creating parent dirs) and sets its mtime.
fn write_file(path: &Path, data: &[u8], mtime: SystemTime) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
}

/// Every regular file under `root`, keyed by its path relative to `root` ('/'-separated).
fn tree_files(root: &Path) -> BTreeMap<String, PathBuf> {
    walk_files(root)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
                p,
            )
        })
        .collect()
}

/// Asserts both trees hold the same relative paths with the same bytes.
fn assert_same_tree(a: &Path, b: &Path) {
    let fa = tree_files(a);
    let fb = tree_files(b);
    let ka: Vec<&String> = fa.keys().collect();
    let kb: Vec<&String> = fb.keys().collect();
    assert_eq!(
        ka,
        kb,
        "trees {} and {} hold different files",
        a.display(),
        b.display()
    );
    for (k, pa) in &fa {
        let da = std::fs::read(pa).unwrap();
        let db = std::fs::read(&fb[k]).unwrap();
        assert!(
            da == db,
            "{k}: contents differ ({} vs {} bytes)",
            da.len(),
            db.len()
        );
    }
}

fn unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Names of objects printed by `aws s3 ls` (lines `DATE TIME SIZE NAME`), and prefixes (`PRE p/`).
fn parse_s3_ls(out: &str) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut prefixes = Vec::new();
    for line in out.lines() {
        if let Some(p) = line.trim_start().strip_prefix("PRE ") {
            prefixes.push(p.to_string());
            continue;
        }
        // "2025-01-01 12:00:00 <size right-aligned to 10> <name>"
        if line.len() < 20 || !line.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        let rest = line[19..].trim_start();
        let (size, name) = rest.split_once(' ').unwrap_or((rest, ""));
        assert!(
            size.chars().all(|c| c.is_ascii_digit()),
            "unexpected `aws s3 ls` line: {line:?}"
        );
        names.push(name.to_string());
    }
    (names, prefixes)
}

// ---------------------------------------------------------------------------------------------
// aws-cli
// ---------------------------------------------------------------------------------------------

storage_test!(aws_cli_s3_commands, |srv| async move {
    if !require_tool("aws") {
        return;
    }
    let t = Tools::new(&srv);
    let work = t.work();
    let b = "cli-bucket";
    let s3b = format!("s3://{b}");
    let v = t.run("aws", ["--version"]).await.ok();
    eprintln!("{}{}", v.stdout.trim(), v.stderr.trim());

    // mb, and ls of buckets.
    let out = t.aws(&["s3", "mb", &s3b]).await;
    assert!(
        out.contains(&format!("make_bucket: {b}")),
        "mb output: {out}"
    );
    let out = t.aws(&["s3", "ls"]).await;
    assert!(
        out.lines().any(|l| l.ends_with(&format!(" {b}"))),
        "`aws s3 ls` does not list {b}:\n{out}"
    );

    // cp of a small file, up and down.
    let small = work.join("small.txt");
    write_file(&small, b"small file for aws-cli\n", SystemTime::now());
    t.aws(&[
        "s3",
        "cp",
        small.to_str().unwrap(),
        &format!("{s3b}/docs/small.txt"),
    ])
    .await;
    let back = work.join("small.back");
    t.aws(&[
        "s3",
        "cp",
        &format!("{s3b}/docs/small.txt"),
        back.to_str().unwrap(),
    ])
    .await;
    assert_eq!(std::fs::read(&back).unwrap(), b"small file for aws-cli\n");
    let head = t
        .s3api(&["head-object", "--bucket", b, "--key", "docs/small.txt"])
        .await;
    assert_eq!(head["ContentLength"], 23, "head-object: {head}");
    assert_eq!(
        head["ETag"],
        quoted(&md5_hex(b"small file for aws-cli\n")),
        "head-object: {head}"
    );
    assert_eq!(
        head["ContentType"], "text/plain",
        "aws-cli guesses the type from .txt: {head}"
    );

    // A 200 MiB file from a seeded PRNG: multipart (8 MiB parts → 25), SHA-256 equal after download.
    let big = work.join("big-200MiB.bin");
    let big_sha = write_prng_file(&big, 200 * MIB, 0xA57_5703E);
    let out = t
        .aws(&[
            "s3",
            "cp",
            big.to_str().unwrap(),
            &format!("{s3b}/big/200MiB.bin"),
        ])
        .await;
    assert!(out.contains("upload:"), "{out}");
    let head = t
        .s3api(&["head-object", "--bucket", b, "--key", "big/200MiB.bin"])
        .await;
    assert_eq!(
        head["ContentLength"],
        (200 * MIB) as u64,
        "head-object: {head}"
    );
    let etag = head["ETag"].as_str().unwrap_or_default().to_string();
    assert!(
        etag.ends_with("-25\""),
        "multipart ETag with 25 parts expected, got {etag}"
    );
    let big_back = work.join("big-200MiB.back");
    t.aws(&[
        "s3",
        "cp",
        &format!("{s3b}/big/200MiB.bin"),
        big_back.to_str().unwrap(),
    ])
    .await;
    assert_eq!(
        std::fs::metadata(&big_back).unwrap().len(),
        (200 * MIB) as u64
    );
    assert_eq!(
        sha256_file(&big_back),
        big_sha,
        "200 MiB object: SHA-256 differs after download"
    );
    std::fs::remove_file(&big).unwrap();
    std::fs::remove_file(&big_back).unwrap();

    // sync a tree; change it; sync again copies only the change.
    let tree = work.join("tree");
    let old = unix(1_700_000_000);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("a.txt".into(), b"alpha\n".to_vec()),
        ("b.txt".into(), b"bravo\n".to_vec()),
        ("sub dir/c+d.txt".into(), b"charlie delta\n".to_vec()),
        ("sub dir/100%.txt".into(), b"percent\n".to_vec()),
        ("deep/x/y/z.bin".into(), pattern(70_000, 7)),
        ("empty.txt".into(), Vec::new()),
    ];
    for i in 0..20 {
        files.push((format!("gen/f{i:02}.dat"), pattern(100 + i * 331, i as u64)));
    }
    for (rel, data) in &files {
        write_file(&tree.join(rel), data, old);
    }
    let dest = format!("{s3b}/tree/");
    let out = t.aws(&["s3", "sync", tree.to_str().unwrap(), &dest]).await;
    let uploads = out.lines().filter(|l| l.starts_with("upload:")).count();
    assert_eq!(
        uploads,
        files.len(),
        "first sync must upload every file:\n{out}"
    );
    let out = t.aws(&["s3", "sync", tree.to_str().unwrap(), &dest]).await;
    assert!(
        !out.lines().any(|l| l.starts_with("upload:")),
        "second sync without changes uploaded again:\n{out}"
    );
    // change one file (new size), add one, delete one
    write_file(
        &tree.join("b.txt"),
        b"bravo, changed and longer\n",
        SystemTime::now(),
    );
    write_file(
        &tree.join("sub dir/new file.txt"),
        b"new\n",
        SystemTime::now(),
    );
    std::fs::remove_file(tree.join("gen/f03.dat")).unwrap();
    let out = t
        .aws(&["s3", "sync", "--delete", tree.to_str().unwrap(), &dest])
        .await;
    let mut uploaded: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("upload:"))
        .map(|l| l.rsplit_once(" to ").map(|(_, d)| d).unwrap_or(l))
        .collect();
    uploaded.sort();
    assert_eq!(
        uploaded,
        vec![
            format!("{dest}b.txt"),
            format!("{dest}sub dir/new file.txt")
        ],
        "sync after a change must copy only the change:\n{out}"
    );
    let deleted: Vec<&str> = out.lines().filter(|l| l.starts_with("delete:")).collect();
    assert_eq!(
        deleted,
        vec![format!("delete: {dest}gen/f03.dat")],
        "sync --delete:\n{out}"
    );
    // download the tree with sync and compare
    let tree_back = work.join("tree-back");
    t.aws(&["s3", "sync", &dest, tree_back.to_str().unwrap()])
        .await;
    assert_same_tree(&tree, &tree_back);

    // ls: keys with spaces, '+', '%'
    let weird = ["with space.txt", "a+b.txt", "100%.txt", "x %2B y+z.txt"];
    for k in weird {
        t.aws(&[
            "s3",
            "cp",
            small.to_str().unwrap(),
            &format!("{s3b}/weird/{k}"),
        ])
        .await;
    }
    let out = t.aws(&["s3", "ls", &format!("{s3b}/weird/")]).await;
    let (mut names, prefixes) = parse_s3_ls(&out);
    names.sort();
    let mut want: Vec<String> = weird.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "`aws s3 ls` of awkward keys:\n{out}");
    assert!(prefixes.is_empty(), "{out}");
    let out = t.aws(&["s3", "ls", &format!("{s3b}/")]).await;
    let (names, mut prefixes) = parse_s3_ls(&out);
    prefixes.sort();
    assert_eq!(
        prefixes,
        vec!["big/", "docs/", "tree/", "weird/"],
        "`aws s3 ls` top level:\n{out}"
    );
    assert!(names.is_empty(), "{out}");
    let out = t
        .aws(&["s3", "ls", "--recursive", &format!("{s3b}/tree/sub dir/")])
        .await;
    let (mut names, _) = parse_s3_ls(&out);
    names.sort();
    assert_eq!(
        names,
        vec![
            "tree/sub dir/100%.txt",
            "tree/sub dir/c+d.txt",
            "tree/sub dir/new file.txt"
        ],
        "`aws s3 ls --recursive`:\n{out}"
    );
    // each listed awkward key can be read back by the name aws-cli printed
    for k in weird {
        let dst = work.join("weird.back");
        t.aws(&[
            "s3",
            "cp",
            &format!("{s3b}/weird/{k}"),
            dst.to_str().unwrap(),
        ])
        .await;
        assert_eq!(
            std::fs::read(&dst).unwrap(),
            b"small file for aws-cli\n",
            "{k}"
        );
    }

    // s3api: put-object with metadata, head-object shows it
    t.s3api(&[
        "put-object",
        "--bucket",
        b,
        "--key",
        "api/meta.pdf",
        "--body",
        small.to_str().unwrap(),
        "--content-type",
        "application/pdf",
        "--metadata",
        "author=Ann,doc-id=42",
    ])
    .await;
    let head = t
        .s3api(&["head-object", "--bucket", b, "--key", "api/meta.pdf"])
        .await;
    assert_eq!(
        head["Metadata"],
        serde_json::json!({"author": "Ann", "doc-id": "42"}),
        "head-object: {head}"
    );
    assert_eq!(
        head["ContentType"], "application/pdf",
        "head-object: {head}"
    );

    // list-objects-v2 (one page as the server sent it: aws-cli's auto-pagination drops KeyCount)
    let list = t
        .s3api(&[
            "list-objects-v2",
            "--no-paginate",
            "--bucket",
            b,
            "--prefix",
            "weird/",
        ])
        .await;
    let contents = list["Contents"]
        .as_array()
        .unwrap_or_else(|| panic!("no Contents: {list}"));
    let mut keys: Vec<&str> = contents
        .iter()
        .map(|o| o["Key"].as_str().unwrap())
        .collect();
    keys.sort();
    let mut want: Vec<String> = weird.iter().map(|k| format!("weird/{k}")).collect();
    want.sort();
    assert_eq!(keys, want, "list-objects-v2: {list}");
    for o in contents {
        assert_eq!(o["Size"], 23, "{o}");
        assert_eq!(
            o["ETag"],
            quoted(&md5_hex(b"small file for aws-cli\n")),
            "{o}"
        );
    }
    assert_eq!(list["KeyCount"], weird.len(), "list-objects-v2: {list}");
    assert_eq!(list["Name"], b, "list-objects-v2: {list}");
    assert_eq!(list["IsTruncated"], false, "list-objects-v2: {list}");

    // get-object-tagging: the empty answer
    let tags = t
        .s3api(&["get-object-tagging", "--bucket", b, "--key", "api/meta.pdf"])
        .await;
    assert_eq!(
        tags["TagSet"],
        serde_json::json!([]),
        "get-object-tagging: {tags}"
    );

    // create-multipart-upload / upload-part / complete-multipart-upload
    let part1 = work.join("part1");
    let part2 = work.join("part2");
    let p1 = pattern(5 * MIB, 11);
    let p2 = pattern(MIB + 123, 12);
    std::fs::write(&part1, &p1).unwrap();
    std::fs::write(&part2, &p2).unwrap();
    let create = t
        .s3api(&[
            "create-multipart-upload",
            "--bucket",
            b,
            "--key",
            "api/multi.bin",
        ])
        .await;
    let upload_id = create["UploadId"]
        .as_str()
        .unwrap_or_else(|| panic!("no UploadId: {create}"))
        .to_string();
    let mut parts = Vec::new();
    for (n, path) in [(1, &part1), (2, &part2)] {
        let r = t
            .s3api(&[
                "upload-part",
                "--bucket",
                b,
                "--key",
                "api/multi.bin",
                "--upload-id",
                &upload_id,
                "--part-number",
                &n.to_string(),
                "--body",
                path.to_str().unwrap(),
            ])
            .await;
        parts.push(serde_json::json!({"PartNumber": n, "ETag": r["ETag"]}));
    }
    assert_eq!(parts[0]["ETag"], quoted(&md5_hex(&p1)), "upload-part ETag");
    let mpu = work.join("mpu.json");
    std::fs::write(&mpu, serde_json::json!({ "Parts": parts }).to_string()).unwrap();
    let done = t
        .s3api(&[
            "complete-multipart-upload",
            "--bucket",
            b,
            "--key",
            "api/multi.bin",
            "--upload-id",
            &upload_id,
            "--multipart-upload",
            &format!("file://{}", mpu.display()),
        ])
        .await;
    assert_eq!(
        done["ETag"],
        multipart_etag(&[&p1, &p2]),
        "complete-multipart-upload: {done}"
    );
    let got = work.join("multi.back");
    t.s3api(&[
        "get-object",
        "--bucket",
        b,
        "--key",
        "api/multi.bin",
        got.to_str().unwrap(),
    ])
    .await;
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert!(
        std::fs::read(&got).unwrap() == whole,
        "multipart object differs after download"
    );

    // delete-objects
    let del = work.join("delete.json");
    std::fs::write(
        &del,
        serde_json::json!({"Objects": [{"Key": "api/meta.pdf"}, {"Key": "api/multi.bin"}, {"Key": "weird/a+b.txt"}]})
            .to_string(),
    )
    .unwrap();
    let r = t
        .s3api(&[
            "delete-objects",
            "--bucket",
            b,
            "--delete",
            &format!("file://{}", del.display()),
        ])
        .await;
    let mut deleted: Vec<&str> = r["Deleted"]
        .as_array()
        .unwrap_or_else(|| panic!("delete-objects: {r}"))
        .iter()
        .map(|d| d["Key"].as_str().unwrap())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec!["api/meta.pdf", "api/multi.bin", "weird/a+b.txt"],
        "delete-objects: {r}"
    );
    assert!(r.get("Errors").is_none(), "delete-objects: {r}");
    let list = t
        .s3api(&["list-objects-v2", "--bucket", b, "--prefix", "api/"])
        .await;
    assert!(
        list.get("Contents").is_none(),
        "objects left after delete-objects: {list}"
    );

    // rm --recursive, then rb
    let out = t
        .aws(&["s3", "rm", "--recursive", &format!("{s3b}/")])
        .await;
    assert!(
        out.lines().filter(|l| l.starts_with("delete:")).count() >= 20,
        "{out}"
    );
    let list = t.s3api(&["list-objects-v2", "--bucket", b]).await;
    assert!(
        list.get("Contents").is_none(),
        "objects left after rm --recursive: {list}"
    );
    let out = t.aws(&["s3", "rb", &s3b]).await;
    assert!(
        out.contains(&format!("remove_bucket: {b}")),
        "rb output: {out}"
    );
    let out = t.aws(&["s3", "ls"]).await;
    assert!(
        !out.lines().any(|l| l.ends_with(&format!(" {b}"))),
        "bucket still listed:\n{out}"
    );
});

// aws-cli (botocore) sends `Expect: 100-continue` on every PUT with a body, also for an empty
// file. If the server answers such a request without `100 Continue` (as it may when there is no
// body to read) and keeps the connection open, botocore keeps the early status line for that
// pooled connection and misreads the next response on it: the next upload hangs until the read
// timeout (60 s) and is retried. Here with one connection, a short read timeout and no retries,
// so that the stall shows up as an error instead of a slow pass.
storage_test!(
    aws_cli_empty_file_then_more_on_one_connection,
    |srv| async move {
        if !require_tool("aws") {
            return;
        }
        let mut t = Tools::new(&srv);
        std::fs::create_dir_all(t.home().join(".aws")).unwrap();
        std::fs::write(
            t.home().join(".aws/config"),
            "[default]\ns3 =\n    max_concurrent_requests = 1\n",
        )
        .unwrap();
        t.set_env("AWS_MAX_ATTEMPTS", "1");
        t.set_env("AWS_RETRY_MODE", "standard");
        let dir = t.work().join("up");
        let now = SystemTime::now();
        write_file(&dir.join("a-empty.txt"), b"", now);
        write_file(&dir.join("b.txt"), b"bravo\n", now);
        write_file(&dir.join("c-empty.txt"), b"", now);
        write_file(&dir.join("d.txt"), b"delta\n", now);
        t.aws(&["s3", "mb", "s3://expect-bucket"]).await;
        let started = std::time::Instant::now();
        let out = t
            .aws(&[
                "--cli-read-timeout",
                "10",
                "s3",
                "cp",
                "--recursive",
                dir.to_str().unwrap(),
                "s3://expect-bucket/up/",
            ])
            .await;
        assert_eq!(
            out.lines().filter(|l| l.starts_with("upload:")).count(),
            4,
            "{out}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "uploading 4 tiny files took {:?}",
            started.elapsed()
        );
        let c = srv.client();
        assert_eq!(get(&c, "expect-bucket", "up/a-empty.txt").await, b"");
        assert_eq!(get(&c, "expect-bucket", "up/b.txt").await, b"bravo\n");
        assert_eq!(get(&c, "expect-bucket", "up/d.txt").await, b"delta\n");
    }
);

// ---------------------------------------------------------------------------------------------
// rclone
// ---------------------------------------------------------------------------------------------

/// Files of the rclone tree: 999 small files in nested dirs (awkward names among them, one empty)
/// plus one 12 MiB file that rclone uploads in 3 parts (upload cutoff 5 MiB, chunk 5 MiB).
fn rclone_tree(root: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut files = BTreeMap::new();
    let base = 1_600_000_000u64;
    for i in 0..10u64 {
        for j in 0..10u64 {
            let dir = if j % 3 == 1 {
                format!("d{i}/sub {j}")
            } else {
                format!("d{i}/s+{j}")
            };
            for k in 0..10u64 {
                let n = i * 100 + j * 10 + k;
                if n == 999 {
                    continue;
                }
                let name = match k {
                    7 => format!("100% {n}.txt"),
                    _ => format!("file-{n}.txt"),
                };
                let size = ((n * 37) % 3000) as usize;
                // a sub-second mtime, so that its round trip through X-Amz-Meta-Mtime is visible
                let mtime = unix(base + n * 61) + Duration::from_millis(n % 1000);
                files.insert(format!("{dir}/{name}"), (pattern(size, n), mtime));
            }
        }
    }
    files.insert(
        "big/multipart-12MiB.bin".to_string(),
        (pattern(12 * MIB, 4242), unix(base)),
    );
    for (rel, (data, mtime)) in &files {
        write_file(&root.join(rel), data, *mtime);
    }
    files
}

fn parse_rfc3339(s: &str) -> SystemTime {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("bad time {s:?}: {e}"));
    SystemTime::from(t)
}

fn close_to(a: SystemTime, b: SystemTime, tol: Duration) -> bool {
    let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
    d <= tol
}

async fn rclone_tree_test(srv: Server, provider: &str) {
    if !require_tool("rclone") {
        return;
    }
    let t = Tools::new(&srv);
    eprintln!(
        "{}",
        t.run("rclone", ["version"])
            .await
            .ok()
            .stdout
            .lines()
            .next()
            .unwrap_or("")
    );
    let conf = t.home().join("rclone.conf");
    std::fs::write(
        &conf,
        format!(
            "[art]\ntype = s3\nprovider = {provider}\nenv_auth = false\naccess_key_id = {}\n\
             secret_access_key = {}\nregion = us-east-1\nendpoint = {}\nforce_path_style = true\n",
            srv.access_key(),
            srv.secret_key(),
            srv.s3_url()
        ),
    )
    .unwrap();
    let bucket = format!("rclone-{}", provider.to_ascii_lowercase());
    let remote = format!("art:{bucket}/tree");
    let src = t.work().join("src");
    let mut files = rclone_tree(&src);
    assert_eq!(files.len(), 1000);
    let conf_s = conf.to_str().unwrap().to_string();
    let src_s = src.to_str().unwrap().to_string();
    let rclone = |args: Vec<&str>| {
        let mut full: Vec<String> = vec![
            "--config".into(),
            conf_s.clone(),
            "--transfers".into(),
            "8".into(),
            "--checkers".into(),
            "8".into(),
            "--retries".into(),
            "1".into(),
            "--low-level-retries".into(),
            "2".into(),
            "--s3-upload-cutoff".into(),
            "5M".into(),
            "--s3-chunk-size".into(),
            "5M".into(),
        ];
        full.extend(args.into_iter().map(String::from));
        let t = &t;
        async move { t.run("rclone", &full).await }
    };

    // copy
    rclone(vec!["copy", &src_s, &remote]).await.ok();
    // check: 0 differences
    let r = rclone(vec!["check", &src_s, &remote]).await.ok();
    assert!(
        r.stderr.contains(" 0 differences found"),
        "rclone check:\n{}",
        r.describe()
    );
    assert!(
        r.stderr.contains("1000 matching files"),
        "rclone check:\n{}",
        r.describe()
    );

    // lsjson -R --metadata: every file with its size, and the mtime rclone stored in X-Amz-Meta-Mtime
    let assert_listing = |files: &BTreeMap<String, (Vec<u8>, SystemTime)>, r: &Run| {
        let v: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("lsjson not JSON: {e}\n{}", r.describe()));
        let listed: BTreeMap<String, &serde_json::Value> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["IsDir"] != true)
            .map(|e| (e["Path"].as_str().unwrap().to_string(), e))
            .collect();
        let want: Vec<&String> = files.keys().collect();
        let got: Vec<&String> = listed.keys().collect();
        assert_eq!(got.len(), want.len(), "rclone lsjson -R: number of files");
        assert_eq!(got, want, "rclone lsjson -R: paths");
        for (path, e) in &listed {
            let (data, mtime) = &files[path];
            assert_eq!(e["Size"], data.len(), "{path}: size in lsjson: {e}");
            let mt = parse_rfc3339(e["ModTime"].as_str().unwrap());
            assert!(
                close_to(mt, *mtime, Duration::from_millis(1)),
                "{path}: ModTime {} is not the file's mtime {:?} (X-Amz-Meta-Mtime lost?): {e}",
                e["ModTime"],
                mtime.duration_since(UNIX_EPOCH).unwrap()
            );
            assert!(
                e["Metadata"]["mtime"].is_string(),
                "{path}: no mtime in rclone's metadata (X-Amz-Meta-Mtime): {e}"
            );
        }
    };
    let r = rclone(vec!["lsjson", "-R", "--metadata", &remote])
        .await
        .ok();
    assert_listing(&files, &r);

    // the metadata as stored: HEAD via the SDK shows x-amz-meta-mtime
    let c = srv.client();
    let key = "tree/d1/sub 1/100% 117.txt";
    let head = c
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
    let meta = head.metadata().cloned().unwrap_or_default();
    let mtime: f64 = meta
        .get("mtime")
        .unwrap_or_else(|| panic!("{key}: no x-amz-meta-mtime, metadata: {meta:?}"))
        .parse()
        .expect("mtime is a float");
    let want = files["d1/sub 1/100% 117.txt"]
        .1
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (mtime - want).abs() < 0.001,
        "{key}: x-amz-meta-mtime {mtime} != {want}"
    );
    let big = c
        .head_object()
        .bucket(&bucket)
        .key("tree/big/multipart-12MiB.bin")
        .send()
        .await
        .expect("head big");
    let etag = big.e_tag().unwrap_or_default();
    assert!(
        etag.ends_with("-3\""),
        "12 MiB file should be a 3-part multipart object, ETag {etag}"
    );
    assert_eq!(
        etag,
        multipart_etag(&[
            &files["big/multipart-12MiB.bin"].0[..5 * MIB],
            &files["big/multipart-12MiB.bin"].0[5 * MIB..10 * MIB],
            &files["big/multipart-12MiB.bin"].0[10 * MIB..]
        ])
    );

    // change the tree: modify 10 files, delete 10, add 5; sync copies and deletes just those
    let later = unix(1_650_000_000);
    let paths: Vec<String> = files.keys().cloned().collect();
    let mut modified = Vec::new();
    for p in paths
        .iter()
        .filter(|p| !p.starts_with("big/"))
        .step_by(97)
        .take(10)
    {
        let data = format!("modified {p}\n").into_bytes();
        write_file(&src.join(p), &data, later);
        files.insert(p.clone(), (data, later));
        modified.push(p.clone());
    }
    let mut removed = Vec::new();
    for p in paths
        .iter()
        .filter(|p| !p.starts_with("big/"))
        .skip(5)
        .step_by(89)
        .take(10)
    {
        if modified.contains(p) {
            continue;
        }
        std::fs::remove_file(src.join(p)).unwrap();
        files.remove(p);
        removed.push(p.clone());
    }
    for n in 0..5 {
        let p = format!("new dir {n}/added+{n}.txt");
        let data = format!("added {n}\n").into_bytes();
        write_file(&src.join(&p), &data, later);
        files.insert(p, (data, later));
    }
    let r = rclone(vec!["sync", "-v", &src_s, &remote]).await.ok();
    let copied = r
        .stderr
        .lines()
        .filter(|l| l.contains(": Copied ("))
        .count();
    let deleted = r.stderr.lines().filter(|l| l.contains(": Deleted")).count();
    let touched = r
        .stderr
        .lines()
        .filter(|l| l.contains("Updated modification time"))
        .count();
    assert_eq!(
        copied,
        modified.len() + 5,
        "rclone sync: files copied\n{}",
        r.describe()
    );
    assert_eq!(
        deleted,
        removed.len(),
        "rclone sync: files deleted\n{}",
        r.describe()
    );
    assert_eq!(
        touched,
        0,
        "rclone sync: mtimes of unchanged files differed\n{}",
        r.describe()
    );

    let r = rclone(vec!["check", &src_s, &remote]).await.ok();
    assert!(
        r.stderr.contains(" 0 differences found"),
        "rclone check after sync:\n{}",
        r.describe()
    );
    let r = rclone(vec!["lsjson", "-R", "--metadata", &remote])
        .await
        .ok();
    assert_listing(&files, &r);
    let r = rclone(vec!["cat", &format!("{remote}/{}", modified[0])])
        .await
        .ok();
    assert_eq!(
        r.stdout,
        format!("modified {}\n", modified[0]),
        "rclone cat of a modified file"
    );
    // a second sync has nothing to do
    let r = rclone(vec!["sync", "-v", &src_s, &remote]).await.ok();
    assert!(
        !r.stderr.contains(": Copied (") && !r.stderr.contains(": Deleted"),
        "second rclone sync was not a no-op:\n{}",
        r.describe()
    );

    // copy back down and compare trees
    let down = t.work().join("down");
    rclone(vec!["copy", &remote, down.to_str().unwrap()])
        .await
        .ok();
    assert_same_tree(&src, &down);

    // purge removes the objects and the bucket
    rclone(vec!["purge", &format!("art:{bucket}")]).await.ok();
    let out = c.list_buckets().send().await.expect("list_buckets");
    assert!(
        !out.buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "bucket {bucket} still exists after rclone purge"
    );
}

storage_test!(rclone_provider_other, |srv| async move {
    rclone_tree_test(srv, "Other").await;
});

storage_test!(rclone_provider_minio, |srv| async move {
    rclone_tree_test(srv, "Minio").await;
});

// ---------------------------------------------------------------------------------------------
// boto3
// ---------------------------------------------------------------------------------------------

storage_test!(boto3_default_checksums, |srv| async move {
    if !require_python_module("boto3") {
        return;
    }
    let t = Tools::new(&srv);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/py/boto3_client.py");
    let r = t
        .run(
            "python3",
            [
                script.as_os_str(),
                OsStr::new("--endpoint"),
                OsStr::new(&srv.s3_url()),
                OsStr::new("--bucket"),
                OsStr::new("boto3-bucket"),
                OsStr::new("--workdir"),
                t.work().as_os_str(),
            ],
        )
        .await;
    println!("{}", r.describe());
    assert!(r.status.success(), "boto3 script failed:\n{}", r.describe());
});
