//! Storage elements over the admin API (issue 4): create/list/get/update/delete, mode
//! transitions (200 / 409 with the allowed targets), history, attributes, and bad input that
//! changes nothing.

mod common;
use common::*;

use serde_json::{Value, json};

async fn token(srv: &Server, id: &str, secret: &str) -> String {
    let r = srv
        .http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(json!({"client_id": id, "client_secret": secret}).to_string())
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status().as_u16(), 200, "token");
    let v: Value = serde_json::from_str(&r.text().await.expect("body")).expect("token json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

struct Api<'a> {
    srv: &'a Server,
    bearer: String,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .srv
            .http()
            .request(method, format!("{}{path}", self.srv.admin_url()))
            .bearer_auth(&self.bearer);
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = rb.send().await.expect("admin request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

async fn admin(srv: &Server) -> Api<'_> {
    Api {
        srv,
        bearer: token(srv, srv.access_key(), srv.secret_key()).await,
    }
}

#[track_caller]
fn api_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{:#}", got.1);
    assert_eq!(got.1["error"], code, "{:#}", got.1);
}

storage_test!(create_list_get_update_delete, |srv| async move {
    let api = admin(&srv).await;
    let (st, el) = api
        .post(
            "/api/v1/storage-elements",
            json!({"name": "contracts", "mode": "rw", "backend": {"kind": "local"},
                   "capacity_bytes": 1000, "description": "signed contracts"}),
        )
        .await;
    assert_eq!(st, 201, "{el:#}");
    assert_eq!(el["mode"], "rw");
    assert_eq!(el["capacity_bytes"], 1000);
    assert_eq!(el["used_bytes"], 0);
    assert!(srv.element_dir("contracts").join("element.json").is_file());
    let (st, _) = api
        .post("/api/v1/storage-elements", json!({"name": "scratch"}))
        .await;
    assert_eq!(st, 201);

    // Objects through S3 show up in the counters.
    let c = srv.client();
    put(&c, "contracts", "a", "0123456789").await;
    let (st, el) = api.get("/api/v1/storage-elements/contracts").await;
    assert_eq!(st, 200);
    assert_eq!(
        (el["used_bytes"].as_i64(), el["object_count"].as_i64()),
        (Some(10), Some(1))
    );
    assert_eq!(el["quota_used_percent"], 1);

    let (_, all) = api.get("/api/v1/storage-elements?mode=rw").await;
    let names: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, vec!["contracts"]);
    let (_, found) = api
        .get("/api/v1/storage-elements?q=scr&backend=local")
        .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));

    // Update description and quota; a quota below usage is refused and changes nothing.
    let (st, el) = api
        .call(
            Method::PATCH,
            "/api/v1/storage-elements/contracts",
            Some(json!({"description": "v2", "capacity_bytes": 5000})),
        )
        .await;
    assert_eq!(st, 200, "{el:#}");
    assert_eq!(
        (el["description"].as_str(), el["capacity_bytes"].as_i64()),
        (Some("v2"), Some(5000))
    );
    let r = api
        .call(
            Method::PATCH,
            "/api/v1/storage-elements/contracts",
            Some(json!({"capacity_bytes": 5})),
        )
        .await;
    api_error(&r, 409, "conflict");
    assert!(
        r.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("below the 10 bytes"),
        "{:#}",
        r.1
    );
    let (_, el) = api.get("/api/v1/storage-elements/contracts").await;
    assert_eq!(el["capacity_bytes"], 5000);

    // Delete: only empty and edit.
    let r = api
        .call(Method::DELETE, "/api/v1/storage-elements/contracts", None)
        .await;
    api_error(&r, 409, "conflict");
    assert_eq!(get(&c, "contracts", "a").await, b"0123456789");
    put(&c, "scratch", "k", "v").await;
    let r = api
        .call(Method::DELETE, "/api/v1/storage-elements/scratch", None)
        .await;
    api_error(&r, 409, "conflict");
    c.delete_object()
        .bucket("scratch")
        .key("k")
        .send()
        .await
        .expect("delete");
    let (st, _) = api
        .call(Method::DELETE, "/api/v1/storage-elements/scratch", None)
        .await;
    assert_eq!(st, 204);
    api_error(
        &api.get("/api/v1/storage-elements/scratch").await,
        404,
        "not_found",
    );
});

storage_test!(mode_transitions_and_history, |srv| async move {
    let api = admin(&srv).await;
    let (st, _) = api
        .post(
            "/api/v1/storage-elements",
            json!({"name": "books", "mode": "rw"}),
        )
        .await;
    assert_eq!(st, 201);
    let c = srv.client();
    put(&c, "books", "a", "alpha").await;

    // Illegal: 409 naming the allowed targets; nothing changes.
    let r = api
        .post(
            "/api/v1/storage-elements/books/mode",
            json!({"mode": "ar", "reason": "skip"}),
        )
        .await;
    api_error(&r, 409, "conflict");
    assert_eq!(
        r.1["message"],
        "storage element 'books' cannot change from mode rw to ar: from rw the allowed targets are: ro"
    );
    api_error(
        &api.post(
            "/api/v1/storage-elements/books/mode",
            json!({"mode": "purple"}),
        )
        .await,
        400,
        "bad_request",
    );
    api_error(
        &api.post(
            "/api/v1/storage-elements/books/mode",
            json!({"mode": "ro", "extra": 1}),
        )
        .await,
        400,
        "bad_request",
    );
    assert_eq!(
        api.get("/api/v1/storage-elements/books").await.1["mode"],
        "rw"
    );

    let (st, el) = api
        .post(
            "/api/v1/storage-elements/books/mode",
            json!({"mode": "ro", "reason": "closed"}),
        )
        .await;
    assert_eq!(st, 200, "{el:#}");
    assert_eq!(el["mode"], "ro");
    // Takes effect on the next S3 request.
    let f = sdk_err(
        c.put_object()
            .bucket("books")
            .key("b")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    f.assert(403, "AccessDenied");

    let r = api
        .post("/api/v1/storage-elements/books/mode", json!({"mode": "rw"}))
        .await;
    api_error(&r, 409, "conflict");
    assert!(
        r.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("confirm"),
        "{:#}",
        r.1
    );
    let (st, _) = api
        .post(
            "/api/v1/storage-elements/books/mode",
            json!({"mode": "rw", "confirm": true, "reason": "fix"}),
        )
        .await;
    assert_eq!(st, 200);
    put(&c, "books", "b", "bravo").await;

    let (st, h) = api.get("/api/v1/storage-elements/books/mode-history").await;
    assert_eq!(st, 200);
    let items = h["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{h:#}");
    assert_eq!(
        (items[0]["from"].as_str(), items[0]["to"].as_str()),
        (Some("rw"), Some("ro"))
    );
    assert_eq!(items[0]["reason"], "closed");
    assert_eq!(items[0]["changed_by"], json!(srv_admin_name(&api).await));
    assert_eq!(
        (items[1]["from"].as_str(), items[1]["to"].as_str()),
        (Some("ro"), Some("rw"))
    );

    // edit never changes.
    create_bucket(&c, "plain").await;
    let r = api
        .post("/api/v1/storage-elements/plain/mode", json!({"mode": "rw"}))
        .await;
    api_error(&r, 409, "conflict");
    assert!(
        r.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("mode edit is final")
    );
    api_error(
        &api.post(
            "/api/v1/storage-elements/nosuch/mode",
            json!({"mode": "ro"}),
        )
        .await,
        404,
        "not_found",
    );
});

/// The name of the account the admin token belongs to (the system account).
async fn srv_admin_name(api: &Api<'_>) -> String {
    let (_, v) = api.get("/api/v1/storage-elements/books").await;
    // The element was created by the same caller through the API.
    v["created_by"].as_str().unwrap_or_default().to_owned()
}

storage_test!(attributes_and_access, |srv| async move {
    let api = admin(&srv).await;
    let c = srv.client();
    create_bucket(&c, "docs").await;
    c.put_object()
        .bucket("docs")
        .key("r/1.pdf")
        .metadata("author", "ann")
        .body(ByteStream::from_static(b"pdf"))
        .send()
        .await
        .expect("put");
    let (st, attr) = api
        .get("/api/v1/storage-elements/docs/attributes?key=r/1.pdf")
        .await;
    assert_eq!(st, 200, "{attr:#}");
    let disk = srv.object_on_disk("docs", "r/1.pdf").expect("on disk");
    assert_eq!(attr, disk.json);
    api_error(
        &api.get("/api/v1/storage-elements/docs/attributes?key=missing")
            .await,
        404,
        "not_found",
    );

    // No token: 401. Bad names: 400, nothing created.
    let r = srv
        .http()
        .get(format!("{}/api/v1/storage-elements", srv.admin_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    for bad in ["Bad_Name", "dot.-dash", "dash-.dot"] {
        api_error(
            &api.post("/api/v1/storage-elements", json!({"name": bad}))
                .await,
            400,
            "bad_request",
        );
    }
    api_error(
        &api.post(
            "/api/v1/storage-elements",
            json!({"name": "okname", "mode": "frozen"}),
        )
        .await,
        400,
        "bad_request",
    );
    api_error(
        &api.post("/api/v1/storage-elements", json!({"name": "docs"}))
            .await,
        409,
        "conflict",
    );
    let (_, all) = api.get("/api/v1/storage-elements").await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1), "{all:#}");
});

storage_test!(auditors_read_only_admins_change, |srv| async move {
    let api = admin(&srv).await;
    let (st, _) = api
        .post(
            "/api/v1/storage-elements",
            json!({"name": "books", "mode": "rw"}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, acc) = api
        .post(
            "/api/v1/service-accounts",
            json!({"name": "aud", "role": "auditor"}),
        )
        .await;
    assert_eq!(st, 201, "{acc:#}");
    let auditor = Api {
        srv: &srv,
        bearer: token(
            &srv,
            acc["client_id"].as_str().expect("client_id"),
            acc["client_secret"].as_str().expect("client_secret"),
        )
        .await,
    };
    assert_eq!(auditor.get("/api/v1/storage-elements/books").await.0, 200);
    assert_eq!(
        auditor
            .get("/api/v1/storage-elements/books/mode-history")
            .await
            .0,
        200
    );
    api_error(
        &auditor
            .post("/api/v1/storage-elements/books/mode", json!({"mode": "ro"}))
            .await,
        403,
        "forbidden",
    );
    api_error(
        &auditor
            .post("/api/v1/storage-elements", json!({"name": "mine"}))
            .await,
        403,
        "forbidden",
    );
    let (_, el) = api.get("/api/v1/storage-elements/books").await;
    assert_eq!(el["mode"], "rw");
    let (_, h) = api.get("/api/v1/storage-elements/books/mode-history").await;
    assert_eq!(h["items"], json!([]));
    api_error(
        &api.get("/api/v1/storage-elements/mine").await,
        404,
        "not_found",
    );
});

storage_test!(element_on_its_own_root_path, |srv| async move {
    let mut srv = srv;
    let api = admin(&srv).await;
    let outside = tempfile::Builder::new()
        .prefix("artstore-element-")
        .tempdir()
        .expect("tempdir");
    let root = outside.path().join("archive-2026");
    let root_str = root.to_str().expect("utf-8 path").to_owned();

    // Bad paths: a clear 400 and nothing created.
    let occupied = outside.path().join("occupied");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("someone-elses.txt"), "x").unwrap();
    let inside = srv.data_dir().join("elements").join("nested");
    for (path, words) in [
        ("relative/dir".to_owned(), "absolute"),
        (format!("{root_str}/../x"), "absolute"),
        (inside.to_str().unwrap().to_owned(), "overlaps"),
        (srv.data_dir().to_str().unwrap().to_owned(), "overlaps"),
        (occupied.to_str().unwrap().to_owned(), "not empty"),
    ] {
        let r = api
            .post(
                "/api/v1/storage-elements",
                json!({"name": "placed", "backend": {"kind": "local", "path": path}}),
            )
            .await;
        api_error(&r, 400, "bad_request");
        let msg = r.1["message"].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{path}: {msg}");
        api_error(
            &api.get("/api/v1/storage-elements/placed").await,
            404,
            "not_found",
        );
        assert!(std::fs::symlink_metadata(srv.element_dir("placed")).is_err());
    }
    assert_eq!(
        std::fs::read_to_string(occupied.join("someone-elses.txt")).unwrap(),
        "x"
    );
    assert!(!inside.exists());

    // On its own path: element.json and every object land there, not in the data dir.
    let (st, el) = api
        .post(
            "/api/v1/storage-elements",
            json!({"name": "placed", "mode": "edit",
                   "backend": {"kind": "local", "path": root_str}}),
        )
        .await;
    assert_eq!(st, 201, "{el:#}");
    assert_eq!(el["backend"]["path"], root_str.as_str());
    assert!(root.join("element.json").is_file());
    let c = srv.client();
    put(&c, "placed", "deeds/1.pdf", "first deed").await;
    put(&c, "placed", "deeds/2.pdf", "second deed").await;
    let on_root: Vec<_> = walk_files(&root)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".attr.json"))
        .collect();
    assert_eq!(on_root.len(), 2, "{on_root:?}");
    assert_eq!(get(&c, "placed", "deeds/1.pdf").await, b"first deed");
    let (_, listed) = api.get("/api/v1/storage-elements?backend=local").await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "placed")
    );

    // The index rebuilt from the sidecars alone finds the element and its objects again.
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let (report, _) = srv.rebuild_lost_index().await;
    assert_eq!(report["objects_indexed"], 2, "{report}");
    srv.restart().await;
    let c = srv.client();
    assert_eq!(get(&c, "placed", "deeds/2.pdf").await, b"second deed");
    let api = admin(&srv).await;
    let (st, el) = api.get("/api/v1/storage-elements/placed").await;
    assert_eq!(st, 200, "{el:#}");
    assert_eq!(el["backend"]["path"], root_str.as_str());
    assert_eq!(el["object_count"], 2);

    // Delete: once empty, the element and what it put on its path are gone.
    for k in ["deeds/1.pdf", "deeds/2.pdf"] {
        c.delete_object()
            .bucket("placed")
            .key(k)
            .send()
            .await
            .expect("delete");
    }
    let (st, _) = api
        .call(Method::DELETE, "/api/v1/storage-elements/placed", None)
        .await;
    assert_eq!(st, 204);
    assert!(std::fs::symlink_metadata(srv.element_dir("placed")).is_err());
    assert!(!root.exists(), "the element's own directory is removed");
    // Its name is free again, on the default backend.
    let (st, _) = api
        .post("/api/v1/storage-elements", json!({"name": "placed"}))
        .await;
    assert_eq!(st, 201);
    assert!(srv.element_dir("placed").is_dir());
});

storage_test!(
    delete_with_confirm_in_any_mode_only_when_empty,
    |srv| async move {
        let api = admin(&srv).await;
        let c = srv.client();
        for (name, mode) in [("closed", "rw"), ("filled", "rw")] {
            let (st, el) = api
                .post(
                    "/api/v1/storage-elements",
                    json!({"name": name, "mode": mode}),
                )
                .await;
            assert_eq!(st, 201, "{el:#}");
        }
        let (st, _) = api
            .post(
                "/api/v1/storage-elements/closed/mode",
                json!({"mode": "ro", "reason": "by mistake"}),
            )
            .await;
        assert_eq!(st, 200);
        put(&c, "filled", "a", "alpha").await;
        let (st, _) = api
            .post(
                "/api/v1/storage-elements/filled/mode",
                json!({"mode": "ro"}),
            )
            .await;
        assert_eq!(st, 200);

        // Without confirmation an element in mode ro stays, even empty.
        let r = api
            .call(Method::DELETE, "/api/v1/storage-elements/closed", None)
            .await;
        api_error(&r, 409, "conflict");
        assert_eq!(
            r.1["message"],
            "storage element 'closed' is in mode ro: deleting it needs confirmation (confirm=true, or --confirm in the CLI); only an empty element can be deleted"
        );
        let r = api
            .call(
                Method::DELETE,
                "/api/v1/storage-elements/closed?confirm=perhaps",
                None,
            )
            .await;
        api_error(&r, 400, "bad_request");
        assert_eq!(api.get("/api/v1/storage-elements/closed").await.0, 200);
        // The mode change through the API is in element.json too.
        let doc: Value = serde_json::from_slice(
            &std::fs::read(srv.element_dir("closed").join("element.json")).expect("element.json"),
        )
        .expect("json");
        assert_eq!(doc["mode"], "ro");
        let h = doc["mode_history"].as_array().expect("mode_history");
        assert_eq!(h.len(), 1, "{doc}");
        assert_eq!(
            (
                h[0]["from"].as_str(),
                h[0]["to"].as_str(),
                h[0]["reason"].as_str()
            ),
            (Some("rw"), Some("ro"), Some("by mistake"))
        );

        // Confirmed, a non-empty element is still refused and keeps its data.
        let r = api
            .call(
                Method::DELETE,
                "/api/v1/storage-elements/filled?confirm=true",
                None,
            )
            .await;
        api_error(&r, 409, "conflict");
        assert_eq!(
            r.1["message"],
            "storage element 'filled' is not empty: delete its objects first"
        );
        assert_eq!(get(&c, "filled", "a").await, b"alpha");
        let (_, el) = api.get("/api/v1/storage-elements/filled").await;
        assert_eq!(
            (el["mode"].as_str(), el["object_count"].as_i64()),
            (Some("ro"), Some(1))
        );

        // Confirmed and empty: gone, directory and history with it.
        let (st, _) = api
            .call(
                Method::DELETE,
                "/api/v1/storage-elements/closed?confirm=true",
                None,
            )
            .await;
        assert_eq!(st, 204);
        api_error(
            &api.get("/api/v1/storage-elements/closed").await,
            404,
            "not_found",
        );
        assert!(!srv.element_dir("closed").exists());
        // The name is free again, and the new element does not inherit the old history.
        let (st, _) = api
            .post(
                "/api/v1/storage-elements",
                json!({"name": "closed", "mode": "rw"}),
            )
            .await;
        assert_eq!(st, 201);
        let (_, h) = api
            .get("/api/v1/storage-elements/closed/mode-history")
            .await;
        assert_eq!(h["items"], json!([]), "{h:#}");
    }
);

// Issue 11: every element has a typed backend configuration, checked before anything is
// created; a bad one is a 400 naming the field at fault.
storage_test!(
    backend_configuration_is_checked_at_creation,
    |srv| async move {
        let api = admin(&srv).await;
        let s3 = json!({"kind": "s3", "endpoint": "http://127.0.0.1:1", "region": "us-east-1",
        "bucket": "remote-archive", "prefix": "el/", "path_style": true,
        "access_key_id": "AKREMOTE", "secret_access_key": "remote-secret-never-shown"});
        let with = |k: &str, v: Value| {
            let mut b = s3.clone();
            b[k] = v;
            b
        };
        let mut unknown_s3_field = s3.clone();
        unknown_s3_field["colour"] = json!("red");
        for (backend, words) in [
            (json!({"kind": "ftp"}), "unknown variant `ftp`"),
            (json!({"path": "/srv/x"}), "missing field `kind`"),
            (
                json!({"kind": "local", "colour": "red"}),
                "unknown field `colour`",
            ),
            (
                json!({"kind": "local", "import": {"key_template": "{file}"}}),
                "backend.import",
            ),
            (unknown_s3_field, "unknown field `colour`"),
            (with("endpoint", json!("ftp://host:21")), "backend.endpoint"),
            (with("endpoint", json!("not a url")), "backend.endpoint"),
            (with("bucket", json!("Not_A_Bucket")), "backend.bucket"),
            (with("prefix", json!("no-slash")), "backend.prefix"),
            (
                with("secret_access_key_sealed", json!("x")),
                "secret_access_key_sealed",
            ),
            // Well formed, but nothing answers at the endpoint: the remote's error.
            (s3.clone(), "unreachable"),
        ] {
            let r = api
                .post(
                    "/api/v1/storage-elements",
                    json!({"name": "refused", "backend": backend}),
                )
                .await;
            api_error(&r, 400, "bad_request");
            let msg = r.1["message"].as_str().unwrap_or_default();
            assert!(msg.contains(words), "{backend}: {msg}");
            assert!(!msg.contains("remote-secret"), "{msg}");
            api_error(
                &api.get("/api/v1/storage-elements/refused").await,
                404,
                "not_found",
            );
            assert!(std::fs::symlink_metadata(srv.element_dir("refused")).is_err());
        }
        assert!(!srv.logs().contains("remote-secret-never-shown"));

        // The same through the CLI: the flag's JSON is checked the same way, nothing created.
        let (ok, _, err) = srv.cli(&[
            "element",
            "create",
            "refused",
            "--backend-json",
            r#"{"kind":"local","colour":"red"}"#,
        ]);
        assert!(!ok && err.contains("unknown field `colour`"), "{err}");
        let (ok, _, err) = srv.cli(&[
            "element",
            "create",
            "refused",
            "--backend-json",
            &s3.to_string(),
        ]);
        assert!(!ok && err.contains("unreachable"), "{err}");
        api_error(
            &api.get("/api/v1/storage-elements/refused").await,
            404,
            "not_found",
        );

        // An explicit local backend is the default one, stored and shown as given.
        let (st, el) = api
            .post(
                "/api/v1/storage-elements",
                json!({"name": "explicit", "backend": {"kind": "local"}}),
            )
            .await;
        assert_eq!(st, 201, "{el:#}");
        assert_eq!(el["backend"], json!({"kind": "local"}));
        assert!(srv.element_dir("explicit").join("element.json").is_file());
        let (ok, out, err) = srv.cli(&[
            "element",
            "create",
            "from-cli",
            "--backend-json",
            r#"{"kind":"local"}"#,
        ]);
        assert!(ok, "{err}");
        assert!(out.contains("\"kind\": \"local\""), "{out}");
        let c = srv.client();
        for b in ["explicit", "from-cli"] {
            put(&c, b, "a/doc.txt", "on the local backend").await;
            assert_eq!(get(&c, b, "a/doc.txt").await, b"on the local backend");
        }
    }
);

/// The server's master key, which seals secrets in the index.
fn master_box(srv: &Server) -> artstore_metadata::SecretBox {
    let text = std::fs::read_to_string(srv.data_dir().join("master.key")).expect("master.key");
    let key = artstore_metadata::MasterKey::parse(&text).expect("master key");
    artstore_metadata::SecretBox::new(&key)
}

// An `s3` element made by a node that has the remote backend: its secret is in the index
// only sealed, never shown by the API, the CLI or the logs; this node answers its S3
// requests 503 naming the backend, and stores nothing.
storage_test!(
    s3_element_secret_is_sealed_and_never_shown,
    |srv| async move {
        let api = admin(&srv).await;
        let plain = "remote-secret-7f3a9c";
        let sealed = master_box(&srv).seal(plain).expect("seal");
        let stored = json!({"kind": "s3", "endpoint": "http://127.0.0.1:1", "region": "us-east-1",
        "bucket": "remote-archive", "prefix": "el/", "path_style": true,
        "access_key_id": "AKREMOTE", "secret_access_key_sealed": sealed});
        let mut conn = srv.index_conn().await;
        sqlx::query(
        "INSERT INTO storage_elements (name, mode, backend, capacity_bytes, used_bytes, object_count, description, created_by, created_ms, updated_ms) VALUES ('remote', 'edit', $1, NULL, 0, 0, NULL, 'other-node', 1, 1)",
    )
    .bind(stored.to_string())
    .execute(&mut conn)
    .await
    .expect("insert element");

        let (st, el) = api.get("/api/v1/storage-elements/remote").await;
        assert_eq!(st, 200, "{el:#}");
        assert_eq!(el["backend"]["kind"], "s3");
        assert_eq!(el["backend"]["bucket"], "remote-archive");
        assert_eq!(el["backend"]["access_key_id"], "AKREMOTE");
        let text = el.to_string();
        assert!(!text.contains(plain) && !text.contains(&sealed), "{text}");
        assert!(el["backend"].get("secret_access_key").is_none());
        let (_, listed) = api.get("/api/v1/storage-elements?backend=s3").await;
        assert_eq!(
            listed["items"].as_array().map(Vec::len),
            Some(1),
            "{listed}"
        );
        assert!(!listed.to_string().contains(&sealed));
        let (ok, out, err) = srv.cli(&["element", "show", "remote"]);
        assert!(ok, "{err}");
        assert!(out.contains("remote-archive") && !out.contains(plain) && !out.contains(&sealed));

        // Its remote does not answer: 503 naming the backend, nothing stored.
        let c = srv.client();
        let err = c
            .put_object()
            .bucket("remote")
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await
            .expect_err("no remote backend here");
        let svc = err.into_service_error();
        let meta = svc.meta();
        assert_eq!(meta.code(), Some("ServiceUnavailable"), "{meta:?}");
        assert!(
            meta.message()
                .is_some_and(|m| m.contains("remote S3 backend http://127.0.0.1:1")
                    && m.contains("unreachable")),
            "{meta:?}"
        );
        let (_, el) = api.get("/api/v1/storage-elements/remote").await;
        assert_eq!(el["object_count"], 0);

        // The row still holds the secret only sealed, and it opens under the master key.
        let row: String =
            sqlx::query_scalar("SELECT backend FROM storage_elements WHERE name = 'remote'")
                .fetch_one(&mut conn)
                .await
                .expect("row");
        assert!(!row.contains(plain), "{row}");
        let v: Value = serde_json::from_str(&row).expect("json");
        let opened = master_box(&srv)
            .open(v["secret_access_key_sealed"].as_str().expect("sealed"))
            .expect("opens");
        assert_eq!(opened, plain);
        assert!(!srv.logs().contains(plain));
    }
);
