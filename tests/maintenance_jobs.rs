//! Long work shows progress (issue 10, item 9): verify, rebuild and import started as jobs over
//! the admin API, polled to the end, reporting what the CLI prints for the same data; one
//! rebuild per element (409 with the holder's id, decided in the index); a job of a node that
//! stopped does not stay running; who may start and read jobs; every refusal named and
//! nothing changed; a job started on one node read on another; and the CLI's JSON summary
//! with no progress bar when stderr is not a terminal.

mod common;
mod identity;

use std::time::{Duration, Instant};

use common::*;
use identity::*;
use serde_json::{Value, json};

const JOBS: &str = "/api/v1/maintenance/jobs";

/// Waits (generously) until the job has finished; returns it.
async fn wait_job(srv: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = call(
            srv,
            Method::GET,
            &format!("{JOBS}/{id}"),
            As::Bearer(token),
            None,
        )
        .await;
        let job = r.ok(200).clone();
        if matches!(job["status"].as_str(), Some("succeeded" | "failed")) {
            return job;
        }
        assert!(
            matches!(job["status"].as_str(), Some("queued" | "running")),
            "{job}"
        );
        assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a job and checks the 202: its id, kind and `Location`.
async fn start(srv: &Server, token: &str, path: &str, body: Option<&str>, kind: &str) -> String {
    let r = call(srv, Method::POST, path, As::Bearer(token), body).await;
    let job = r.ok(202).clone();
    assert_eq!(job["kind"], kind, "{job}");
    assert!(
        matches!(
            job["status"].as_str(),
            Some("queued" | "running" | "succeeded")
        ),
        "{job}"
    );
    let id = job["id"].as_str().expect("job id").to_owned();
    assert_eq!(
        r.header("location").as_deref(),
        Some(format!("{JOBS}/{id}").as_str())
    );
    id
}

/// Two elements with objects: `docs` (5) and `misc` (2). Returns their total bytes.
async fn fill(srv: &Server) -> u64 {
    let c = srv.client();
    let mut total = 0;
    for (bucket, n) in [("docs", 5), ("misc", 2)] {
        c.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket");
        for i in 0..n {
            let body = vec![b'a' + i as u8; 1000 * (i + 1)];
            total += body.len() as u64;
            c.put_object()
                .bucket(bucket)
                .key(format!("k{i}"))
                .body(body.into())
                .send()
                .await
                .expect("put");
        }
    }
    total
}

/// stderr of a CLI run without a terminal: log lines (JSON) only, no bar.
#[track_caller]
fn assert_no_bar(stderr: &str) {
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "progress bar output on stderr: {stderr:?}"
    );
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a log line: {line:?}"
        );
    }
}

async fn elements(srv: &Server, token: &str) -> Value {
    let r = call(
        srv,
        Method::GET,
        "/api/v1/storage-elements",
        As::Bearer(token),
        None,
    )
    .await;
    r.ok(200).clone()
}

async fn job_count(srv: &Server, token: &str) -> usize {
    let r = call(srv, Method::GET, JOBS, As::Bearer(token), None).await;
    r.ok(200)["items"].as_array().expect("items").len()
}

storage_test!(
    verify_and_rebuild_jobs_report_what_the_cli_prints,
    |srv| async move {
        let mut srv = srv;
        let admin = admin_token(&srv).await;
        let bytes = fill(&srv).await;

        // Verify, every element: progress counts every object and byte.
        let id = start(&srv, &admin, "/api/v1/maintenance/verify", None, "verify").await;
        let job = wait_job(&srv, &admin, &id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["element"], Value::Null);
        assert_eq!(job["created_by"], "admin", "{job}");
        assert!(job["started_at"].is_string() && job["finished_at"].is_string());
        let p = &job["progress"];
        assert_eq!(
            (&p["phase"], &p["items_done"], &p["items_total"]),
            (&json!("verifying"), &json!(7), &json!(7)),
            "{job}"
        );
        assert_eq!(
            (&p["bytes_done"], &p["bytes_total"]),
            (&json!(bytes), &json!(bytes))
        );
        assert_eq!(p["eta_seconds"], 0);
        let report = &job["report"];
        assert_eq!(report["objects_checked"], 7, "{job}");
        assert_eq!(report["bytes_hashed"], bytes);
        // The CLI (read-only, beside the server) prints the same report as JSON, and no bar.
        let (ok, out, err) = srv.cli(&["index", "verify"]);
        assert!(ok, "{err}");
        let cli: Value = serde_json::from_str(&out).expect("verify prints JSON");
        assert_eq!(&cli, report);
        assert_no_bar(&err);

        // One element only.
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/verify?element=docs",
            None,
            "verify",
        )
        .await;
        let job = wait_job(&srv, &admin, &id).await;
        assert_eq!(
            (&job["status"], &job["element"]),
            (&json!("succeeded"), &json!("docs"))
        );
        assert_eq!(job["report"]["objects_checked"], 5, "{job}");
        assert_eq!(job["params"], json!({"element": "docs"}));

        // A rebuild of one element brings back a row the index lost, while the server serves.
        {
            let mut conn = srv.index_conn().await;
            sqlx::query("DELETE FROM objects WHERE bucket = 'docs' AND key = 'k3'")
                .execute(&mut conn)
                .await
                .expect("lose a row");
            sqlx::query(
                "UPDATE storage_elements SET used_bytes = used_bytes - 4000, \
             object_count = object_count - 1 WHERE name = 'docs'",
            )
            .execute(&mut conn)
            .await
            .expect("and its usage");
        }
        let c = srv.client();
        assert!(
            c.head_object()
                .bucket("docs")
                .key("k3")
                .send()
                .await
                .is_err()
        );
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/rebuild?element=docs",
            None,
            "rebuild",
        )
        .await;
        let job = wait_job(&srv, &admin, &id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let r = &job["report"];
        assert_eq!(
            (
                &r["sidecars_seen"],
                &r["objects_indexed"],
                &r["objects_unchanged"]
            ),
            (&json!(5), &json!(1), &json!(4)),
            "{job}"
        );
        assert_eq!(
            (
                &job["progress"]["items_done"],
                &job["progress"]["items_total"]
            ),
            (&json!(5), &json!(5))
        );
        let head = c
            .head_object()
            .bucket("docs")
            .key("k3")
            .send()
            .await
            .expect("k3 is back");
        assert_eq!(head.content_length(), Some(4000));

        // A rebuild of everything reports what `artstore index rebuild` prints for the same data.
        let id = start(&srv, &admin, "/api/v1/maintenance/rebuild", None, "rebuild").await;
        let job = wait_job(&srv, &admin, &id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["report"]["objects_unchanged"], 7, "{job}");
        // Both jobs are listed, newest first.
        let list = call(&srv, Method::GET, JOBS, As::Bearer(&admin), None).await;
        let items = list.ok(200)["items"].as_array().expect("items").clone();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0]["id"], json!(id));
        assert_eq!(items[3]["kind"], "verify");

        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        let (ok, out, err) = srv.cli(&["index", "rebuild"]);
        assert!(ok, "{err}");
        let cli: Value = serde_json::from_str(&out).expect("rebuild prints JSON");
        assert_eq!(cli, job["report"]);
        assert_no_bar(&err);
    }
);

storage_test!(
    one_rebuild_per_element_and_stopped_nodes_fail,
    |srv| async move {
        let admin = admin_token(&srv).await;
        fill(&srv).await;
        // A rebuild of `docs` that another node is running: its job row and its lock, as that
        // node's start of the job wrote them.
        let now = now_secs() * 1000;
        let other = "0190a000-0000-7000-8000-000000000001";
        {
            let mut conn = srv.index_conn().await;
            sqlx::query(
            "INSERT INTO maintenance_jobs (id, kind, element, params, status, node, created_by, \
             created_ms, started_ms, heartbeat_ms) VALUES ($1, 'rebuild', 'docs', \
             '{\"element\":\"docs\"}', 'running', 'node-b', 'admin', $2, $2, $2)",
        )
        .bind(other)
        .bind(now)
        .execute(&mut conn)
        .await
        .expect("job row");
            sqlx::query("INSERT INTO maintenance_locks (element, job_id) VALUES ('docs', $1)")
                .bind(other)
                .execute(&mut conn)
                .await
                .expect("lock row");
        }
        let before = job_count(&srv, &admin).await;
        for path in [
            "/api/v1/maintenance/rebuild?element=docs",
            // Every element includes docs.
            "/api/v1/maintenance/rebuild",
        ] {
            let r = call(&srv, Method::POST, path, As::Bearer(&admin), None).await;
            r.assert_error(409, "conflict");
            assert_eq!(r.json["job_id"], other, "{}", r.text);
        }
        // Nothing was recorded for the refused starts.
        assert_eq!(job_count(&srv, &admin).await, before);
        // Another element is free, and verify takes no lock.
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/rebuild?element=misc",
            None,
            "rebuild",
        )
        .await;
        assert_eq!(wait_job(&srv, &admin, &id).await["status"], "succeeded");
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/verify?element=docs",
            None,
            "verify",
        )
        .await;
        assert_eq!(wait_job(&srv, &admin, &id).await["status"], "succeeded");
        let r = call(
            &srv,
            Method::GET,
            &format!("{JOBS}/{other}"),
            As::Bearer(&admin),
            None,
        )
        .await;
        assert_eq!(r.ok(200)["status"], "running");

        // That node stops (no heartbeat for longer than 30 s): its job reads as failed, and its
        // lock no longer holds the element.
        {
            let mut conn = srv.index_conn().await;
            sqlx::query("UPDATE maintenance_jobs SET heartbeat_ms = $1 WHERE id = $2")
                .bind(now - 60_000)
                .bind(other)
                .execute(&mut conn)
                .await
                .expect("heartbeat stops");
        }
        let r = call(
            &srv,
            Method::GET,
            &format!("{JOBS}/{other}"),
            As::Bearer(&admin),
            None,
        )
        .await;
        let job = r.ok(200);
        assert_eq!(job["status"], "failed", "{job}");
        assert!(
            job["error"].as_str().is_some_and(|e| e.contains("stopped")),
            "{job}"
        );
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/rebuild?element=docs",
            None,
            "rebuild",
        )
        .await;
        let job = wait_job(&srv, &admin, &id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["report"]["objects_unchanged"], 5);
    }
);

storage_test!(
    only_admins_start_jobs_auditors_read_them,
    |srv| async move {
        let admin = admin_token(&srv).await;
        fill(&srv).await;
        let id = start(&srv, &admin, "/api/v1/maintenance/verify", None, "verify").await;
        wait_job(&srv, &admin, &id).await;
        let user = create_account(&srv, &admin, "worker", "user").await;
        let user = token(&srv, &user.client_id, &user.secret).await;
        let auditor = create_account(&srv, &admin, "inspector", "auditor").await;
        let auditor = token(&srv, &auditor.client_id, &auditor.secret).await;
        let job_path = format!("{JOBS}/{id}");
        for (method, path, body) in [
            (Method::POST, "/api/v1/maintenance/verify", None),
            (Method::POST, "/api/v1/maintenance/rebuild", None),
            (
                Method::POST,
                "/api/v1/maintenance/import",
                Some(r#"{"path": "/tmp", "name": "imp"}"#),
            ),
            (Method::GET, JOBS, None),
            (Method::GET, job_path.as_str(), None),
        ] {
            call(&srv, method.clone(), path, As::Bearer(&user), body)
                .await
                .assert_error(403, "forbidden");
            call(&srv, method.clone(), path, As::None, body)
                .await
                .assert_error(401, "unauthorized");
            if method == Method::POST {
                call(&srv, method, path, As::Bearer(&auditor), body)
                    .await
                    .assert_error(403, "forbidden");
            }
        }
        // The auditor reads; none of the refused starts made a job.
        let r = call(&srv, Method::GET, &job_path, As::Bearer(&auditor), None).await;
        assert_eq!(r.ok(200)["status"], "succeeded");
        assert_eq!(job_count(&srv, &auditor).await, 1);
        // SigV4 works like a token.
        let r = call(
            &srv,
            Method::GET,
            &job_path,
            As::SigV4(ROOT_ACCESS_KEY, ROOT_SECRET_KEY),
            None,
        )
        .await;
        assert_eq!(r.ok(200)["id"], json!(id));
    }
);

storage_test!(
    bad_requests_are_named_and_change_nothing,
    |srv| async move {
        let admin = admin_token(&srv).await;
        fill(&srv).await;
        let legacy = tempfile::tempdir().expect("tempdir");
        let dir = legacy.path().to_string_lossy().into_owned();
        let before = elements(&srv, &admin).await;
        let files_before = srv.files_snapshot();

        call(
            &srv,
            Method::GET,
            &format!("{JOBS}/no-such-job"),
            As::Bearer(&admin),
            None,
        )
        .await
        .assert_error(404, "not_found");
        for (path, parameter) in [
            ("/api/v1/maintenance/verify?element=Bad_Name", "element"),
            ("/api/v1/maintenance/rebuild?element=a", "element"),
            ("/api/v1/maintenance/verify?bogus=1", "bogus"),
            (
                "/api/v1/maintenance/rebuild?element=docs&element=misc",
                "element",
            ),
        ] {
            let r = call(&srv, Method::POST, path, As::Bearer(&admin), None).await;
            r.assert_error(400, "invalid_parameter");
            assert_eq!(r.json["parameter"], parameter, "{path}: {}", r.text);
        }
        for path in [
            "/api/v1/maintenance/verify?element=nosuch",
            "/api/v1/maintenance/rebuild?element=nosuch",
        ] {
            call(&srv, Method::POST, path, As::Bearer(&admin), None)
                .await
                .assert_error(404, "not_found");
        }
        let r = call(
            &srv,
            Method::GET,
            &format!("{JOBS}?limit=0"),
            As::Bearer(&admin),
            None,
        )
        .await;
        r.assert_error(400, "invalid_parameter");
        assert_eq!(r.json["parameter"], "limit");

        let import = "/api/v1/maintenance/import";
        for (body, parameter) in [
            ("[]".to_owned(), "body"),
            ("not json".to_owned(), "body"),
            ("{}".to_owned(), "path"),
            (
                json!({"path": "/no/such/dir", "name": "imp"}).to_string(),
                "path",
            ),
            (
                json!({"path": "relative/dir", "name": "imp"}).to_string(),
                "path",
            ),
            (json!({"path": dir, "name": "Bad_Name"}).to_string(), "name"),
            (json!({"path": dir}).to_string(), "name"),
            (
                json!({"path": dir, "name": "imp", "mode": "xx"}).to_string(),
                "mode",
            ),
            (
                json!({"path": dir, "name": "imp", "dry_run": "yes"}).to_string(),
                "dry_run",
            ),
            (
                json!({"path": dir, "name": "imp", "key_template": "{nope}"}).to_string(),
                "key_template",
            ),
            (
                json!({"path": dir, "name": "imp", "colour": "red"}).to_string(),
                "colour",
            ),
        ] {
            let r = call(&srv, Method::POST, import, As::Bearer(&admin), Some(&body)).await;
            r.assert_error(400, "invalid_parameter");
            assert_eq!(r.json["parameter"], parameter, "{body}: {}", r.text);
        }
        // Nothing was started, created or written.
        assert_eq!(job_count(&srv, &admin).await, 0);
        assert_eq!(elements(&srv, &admin).await, before);
        assert_eq!(srv.files_snapshot(), files_before);
        assert_eq!(std::fs::read_dir(legacy.path()).expect("dir").count(), 0);
    }
);

/// A document as the earlier Python storage element left it.
fn legacy_doc(root: &std::path::Path, hour: &str, original: &str, data: &[u8]) {
    let id = uuid::Uuid::new_v4().to_string();
    let (stem, ext) = original.rsplit_once('.').expect("a name with an extension");
    let name = format!("{stem}_ivanov_20250110T153045_{id}.{ext}");
    let dir = root.join(hour);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(&name), data).expect("data");
    let attr = json!({
        "file_id": id, "original_filename": original, "storage_filename": name,
        "file_size": data.len(), "content_type": "application/pdf",
        "created_at": "2025-01-10 15:30:45.123456+00:00", "updated_at": "2025-01-10T15:30:45Z",
        "created_by_id": "42", "created_by_username": "ivanov", "storage_path": format!("{hour}/"),
        "checksum": sha256_hex(data), "metadata": {"dept": "accounts"},
    });
    std::fs::write(
        dir.join(format!("{name}.attr.json")),
        serde_json::to_vec_pretty(&attr).expect("json"),
    )
    .expect("sidecar");
}

storage_test!(import_job_reports_what_the_cli_prints, |srv| async move {
    let admin = admin_token(&srv).await;
    let legacy = tempfile::tempdir().expect("tempdir");
    let root = legacy.path().join("se01");
    for (i, doc) in ["a.pdf", "b.pdf", "c.pdf"].iter().enumerate() {
        legacy_doc(&root, "2025/01/10/15", doc, &vec![b'x'; 100 * (i + 1)]);
    }
    let path = root.to_string_lossy().into_owned();

    // A dry run as a job and on the CLI: the same report, nothing changed.
    let body = json!({"path": path, "name": "archive", "dry_run": true}).to_string();
    let id = start(
        &srv,
        &admin,
        "/api/v1/maintenance/import",
        Some(&body),
        "import",
    )
    .await;
    let job = wait_job(&srv, &admin, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["report"]["imported"].as_array().map(Vec::len),
        Some(3),
        "{job}"
    );
    assert_eq!(job["params"]["path"], json!(path));
    let (ok, out, err) = srv.cli(&[
        "element",
        "import",
        "--path",
        &path,
        "--name",
        "archive",
        "--dry-run",
    ]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).expect("import prints JSON");
    assert_eq!(cli, job["report"]);
    assert_no_bar(&err);
    assert!(!root.join("element.json").exists());

    // The import itself: hashed (progress in bytes), then indexed; readable over S3.
    let body = json!({"path": path, "name": "archive", "mode": "ro"}).to_string();
    let id = start(
        &srv,
        &admin,
        "/api/v1/maintenance/import",
        Some(&body),
        "import",
    )
    .await;
    let job = wait_job(&srv, &admin, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["element"], "archive");
    let r = &job["report"];
    assert_eq!(
        (
            &r["element_created"],
            &r["bytes_imported"],
            &r["bytes_hashed"]
        ),
        (&json!(true), &json!(600), &json!(600)),
        "{job}"
    );
    assert_eq!(
        (&job["progress"]["phase"], &job["progress"]["items_done"]),
        (&json!("indexing"), &json!(3))
    );
    let got = srv
        .client()
        .get_object()
        .bucket("archive")
        .key("2025/01/10/15/b.pdf")
        .send()
        .await
        .expect("imported document");
    let data = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&data[..], &[b'x'; 200][..]);

    // A second run imports nothing new, as the CLI's would.
    let id = start(
        &srv,
        &admin,
        "/api/v1/maintenance/import",
        Some(&body),
        "import",
    )
    .await;
    let job = wait_job(&srv, &admin, &id).await;
    assert_eq!(
        (
            &job["report"]["already_imported"],
            &job["report"]["imported"]
        ),
        (&json!(3), &json!([])),
        "{job}"
    );
});

storage_test!(
    an_import_that_cannot_run_fails_and_changes_nothing,
    |srv| async move {
        let admin = admin_token(&srv).await;
        fill(&srv).await;
        let legacy = tempfile::tempdir().expect("tempdir");
        let root = legacy.path().join("se01");
        legacy_doc(&root, "2025/01/10/15", "a.pdf", b"annual report");
        let path = root.to_string_lossy().into_owned();
        let before = elements(&srv, &admin).await;
        let files_before = srv.files_snapshot();
        let tree_before = walk_files(&root);

        // `docs` is an element of this ArtStore, not an earlier import: the job fails, saying so.
        let body = json!({"path": path, "name": "docs"}).to_string();
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/import",
            Some(&body),
            "import",
        )
        .await;
        let job = wait_job(&srv, &admin, &id).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["report"], Value::Null);
        assert!(
            job["error"]
                .as_str()
                .is_some_and(|e| e.contains("already exists and was not imported")),
            "{job}"
        );
        assert_eq!(elements(&srv, &admin).await, before);
        assert_eq!(srv.files_snapshot(), files_before);
        assert_eq!(walk_files(&root), tree_before);
        let listed = srv
            .client()
            .list_objects_v2()
            .bucket("docs")
            .send()
            .await
            .expect("list");
        assert_eq!(listed.key_count(), Some(5));
        // Its lock is gone with it: the element can be rebuilt.
        let id = start(
            &srv,
            &admin,
            "/api/v1/maintenance/rebuild?element=docs",
            None,
            "rebuild",
        )
        .await;
        assert_eq!(wait_job(&srv, &admin, &id).await["status"], "succeeded");
    }
);

/// Runs `artstore <args> --data-dir … [--database-url …]` on a terminal (a pty from
/// util-linux `script`): everything it wrote there, stdout and stderr together.
fn on_terminal(srv: &Server, args: &[&str]) -> (bool, String) {
    let mut line = vec![artstore_bin()];
    line.extend(args.iter().map(|a| a.to_string()));
    line.push("--data-dir".into());
    line.push(srv.data_dir().display().to_string());
    if let Some(url) = srv.database_url() {
        line.push("--database-url".into());
        line.push(url);
    }
    let quoted: Vec<String> = line.iter().map(|a| format!("'{a}'")).collect();
    let out = std::process::Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("ARTSTORE_DATABASE_URL")
        .env_remove("ARTSTORE_MASTER_KEY")
        .env_remove("ARTSTORE_CONFIG")
        .env("ARTSTORE_LOG_FORMAT", "json")
        .env("TERM", "xterm")
        .current_dir(srv.data_dir())
        .output()
        .expect("run script");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

storage_test!(the_cli_draws_a_bar_on_a_terminal, |srv| async move {
    if !require_tool("script") {
        return;
    }
    let mut srv = srv;
    fill(&srv).await;
    let (ok, out) = on_terminal(&srv, &["index", "verify"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("verifying") && out.contains("ETA") && out.contains("files"),
        "no progress bar: {out:?}"
    );
    // The report follows the bar.
    assert!(out.contains("\"objects_checked\": 7"), "{out:?}");
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let (ok, out) = on_terminal(&srv, &["index", "rebuild"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("rebuilding") && out.contains("ETA"),
        "no progress bar: {out:?}"
    );
    assert!(out.contains("\"objects_unchanged\": 7"), "{out:?}");
});

const MASTER_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Nodes sharing one PostgreSQL index see each other's jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_started_on_one_node_is_read_on_another() {
    if !db_available(Db::Postgres) {
        return;
    }
    let a = Server::builder()
        .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
        .start(Db::Postgres)
        .await;
    let url = a.database_url().expect("node a uses PostgreSQL");
    let b = Server::builder()
        .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
        .env("ARTSTORE_DATABASE_URL", &url)
        .start(Db::Sqlite)
        .await;
    let bytes = fill(&a).await;
    let token_a = admin_token(&a).await;
    let token_b = admin_token(&b).await;
    let id = start(&a, &token_a, "/api/v1/maintenance/verify", None, "verify").await;
    let on_b = wait_job(&b, &token_b, &id).await;
    assert_eq!(on_b["status"], "succeeded", "{on_b}");
    assert_eq!(on_b["report"]["bytes_hashed"], bytes);
    let on_a = wait_job(&a, &token_a, &id).await;
    assert_eq!(on_a, on_b);
    let list = call(&b, Method::GET, JOBS, As::Bearer(&token_b), None).await;
    assert_eq!(list.ok(200)["items"][0]["id"], json!(id));
}
