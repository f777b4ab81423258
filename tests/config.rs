//! Settings (flags > env vars > `--config` file > defaults), `artstore migrate`, and the first
//! start without configured root keys.

mod common;
use common::*;

use std::process::Command;

fn bin() -> String {
    std::env::var("ARTSTORE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_artstore").into())
}

async fn location(c: &aws_sdk_s3::Client, bucket: &str) -> String {
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
    let out = c
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .expect("location");
    out.location_constraint()
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default()
}

/// A client that signs for `region`: the endpoint refuses any other credential scope.
fn client_in(srv: &Server, region: &str) -> aws_sdk_s3::Client {
    let conf = srv
        .client_config("FILEADMIN", "file-secret-file-secret")
        .region(aws_sdk_s3::config::Region::new(region.to_owned()))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn write_config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("artstore.toml");
    std::fs::write(&path, body).expect("write config");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_applies_and_flags_and_env_override_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        "region = \"eu-central-1\"\nroot_access_key = \"FILEADMIN\"\nroot_secret_key = \"file-secret-file-secret\"\n",
    );

    // The file alone: its region and its root keys.
    let from_file = Server::builder()
        .no_root_keys()
        .arg("--config")
        .arg(cfg.clone())
        .start(Db::Sqlite)
        .await;
    // A request signed for another region is refused, naming the right one.
    let wrong = from_file.client_with("FILEADMIN", "file-secret-file-secret");
    sdk_err(wrong.list_buckets().send().await).assert(400, "AuthorizationHeaderMalformed");
    let c = client_in(&from_file, "eu-central-1");
    assert_eq!(location(&c, "cfg-file").await, "eu-central-1");

    // An env var beats the file, and a flag beats both.
    let env_over = Server::builder()
        .no_root_keys()
        .arg("--config")
        .arg(cfg.clone())
        .env("ARTSTORE_REGION", "ap-south-1")
        .start(Db::Sqlite)
        .await;
    let c = client_in(&env_over, "ap-south-1");
    assert_eq!(location(&c, "cfg-env").await, "ap-south-1");

    let flag_over = Server::builder()
        .no_root_keys()
        .arg("--config")
        .arg(cfg)
        .env("ARTSTORE_REGION", "ap-south-1")
        .arg("--region")
        .arg("sa-east-1")
        .start(Db::Sqlite)
        .await;
    let c = client_in(&flag_over, "sa-east-1");
    assert_eq!(location(&c, "cfg-flag").await, "sa-east-1");
}

#[test]
fn shipped_config_file_is_valid() {
    // Every key in config/artstore.toml is commented out, so it must parse to the defaults;
    // `migrate` reads it without starting a server.
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/artstore.toml");
    let out = Command::new(bin())
        .arg("migrate")
        .arg("--config")
        .arg(shipped)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("ARTSTORE_DATABASE_URL")
        .output()
        .expect("run artstore migrate");
    assert!(
        out.status.success(),
        "migrate with the shipped config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("artstore.db").exists());
}

#[test]
fn database_settings_are_read_and_bad_values_are_refused() {
    let run = |body: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = write_config(dir.path(), body);
        let out = Command::new(bin())
            .arg("migrate")
            .arg("--config")
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("ARTSTORE_DATABASE_URL")
            .output()
            .expect("run artstore migrate");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(concat!(
        "database_pool_size = 4\n",
        "database_statement_timeout = \"off\"\n",
        "database_startup_wait = \"5s\"\n",
    ));
    assert!(ok, "{err}");
    for (body, key) in [
        ("database_pool_size = 0\n", "database_pool_size"),
        (
            "database_statement_timeout = \"soon\"\n",
            "database_statement_timeout",
        ),
        (
            "database_startup_wait = \"forever\"\n",
            "database_startup_wait",
        ),
    ] {
        let (ok, err) = run(body);
        assert!(!ok, "{body} must be refused");
        assert!(err.contains(key), "the error names {key}: {err}");
    }
}

#[test]
fn unknown_config_key_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "regoin = \"eu-west-1\"\n");
    let out = Command::new(bin())
        .arg("migrate")
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run artstore");
    assert!(!out.status.success(), "a misspelt key must not be ignored");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("regoin"), "error names the key: {err}");
    assert!(
        !dir.path().join("data").join("artstore.db").exists(),
        "nothing is created when the configuration is invalid"
    );
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..2 {
        let out = Command::new(bin())
            .arg("migrate")
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("ARTSTORE_DATABASE_URL")
            .output()
            .expect("run artstore migrate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("artstore.db").exists());
    assert!(dir.path().join("master.key").exists());
}

/// Fields of the one log line that announces generated root credentials.
fn generated_keys(logs: &str) -> Vec<(String, String)> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let f = v.get("fields")?;
            Some((
                f.get("access_key")?.as_str()?.to_owned(),
                f.get("secret_key")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

storage_test!(
    first_start_generates_root_keys_once,
    Server::builder().no_root_keys(),
    |srv| async move {
        let mut srv = srv;
        let keys = generated_keys(&srv.logs());
        assert_eq!(keys.len(), 1, "credentials are printed exactly once");
        let (ak, sk) = keys[0].clone();
        let c = srv.client_with(&ak, &sk);
        c.create_bucket()
            .bucket("gen")
            .send()
            .await
            .expect("generated keys work");

        srv.restart().await;
        assert_eq!(
            generated_keys(&srv.logs()).len(),
            1,
            "a restart does not generate or print credentials again"
        );
        let c = srv.client_with(&ak, &sk);
        c.head_bucket()
            .bucket("gen")
            .send()
            .await
            .expect("same keys after restart");
        // The master key file is private to the owner.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(srv.data_dir().join("master.key"))
            .expect("master.key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
);
