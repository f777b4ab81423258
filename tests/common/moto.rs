//! A `moto_server` (PyPI `moto[server]`) of the test's own, as the remote S3 service of
//! storage elements. Without it on PATH the test prints why it skips (a failure under
//! `ARTSTORE_TEST_REQUIRE_ALL=1`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3 as s3;

use super::{find_on_path, require_all};

/// A moto_server process, killed on drop. It accepts any credentials.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Option<Moto> {
        Self::start_on(free_port()).await
    }

    /// A fresh (empty) server on `port`, e.g. the port of one that was stopped.
    pub async fn start_on(port: u16) -> Option<Moto> {
        let Some(path) = find_on_path("moto_server") else {
            if require_all() {
                panic!("`moto_server` not found on PATH (ARTSTORE_TEST_REQUIRE_ALL=1)");
            }
            eprintln!("skipping: `moto_server` not found on PATH (pip install 'moto[server]')");
            return None;
        };
        let child = Command::new(path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(moto)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain SDK client of the server, to make buckets and look behind ArtStore.
    pub fn client(&self) -> s3::Client {
        remote_client(&self.endpoint(), "testing", "testing")
    }

    /// Stops the server (its buckets are gone with it).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDK client of any S3 service (moto, a second ArtStore).
pub fn remote_client(endpoint: &str, ak: &str, sk: &str) -> s3::Client {
    let creds = s3::config::Credentials::new(ak, sk, None, None, "remote");
    let conf = s3::config::Builder::new()
        .behavior_version(s3::config::BehaviorVersion::latest())
        .region(s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(creds)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    s3::Client::from_conf(conf)
}

/// Every key under `prefix` in `bucket` of the remote.
pub async fn remote_keys(c: &s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list the remote bucket");
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    out.sort();
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
