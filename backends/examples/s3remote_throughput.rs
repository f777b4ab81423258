//! Streams a generated body of `MIB` MiB through `S3Remote` to a remote S3 service and reads
//! it back, printing MiB/s each way: the backend's own share of a large PUT/GET, to compare
//! with `aws s3 cp` against the same service.
//!
//! `cargo run -p artstore-backends --example s3remote_throughput -- ENDPOINT BUCKET MIB`
//! with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` set; the bucket must exist.

use std::time::Instant;

use artstore_backends::{S3Remote, S3RemoteConfig, storage_name};
use bytes::Bytes;
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, bucket, mib] = args.as_slice() else {
        return Err("usage: s3remote_throughput ENDPOINT BUCKET MIB".into());
    };
    let mib: usize = mib.parse()?;
    let remote = S3Remote::connect(S3RemoteConfig {
        endpoint: endpoint.clone(),
        bucket: bucket.clone(),
        prefix: "throughput/".to_owned(),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID")?,
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")?,
        ..S3RemoteConfig::default()
    })
    .await?;
    let chunk = Bytes::from(vec![0x5a; 1 << 20]);
    let body = futures::stream::repeat(chunk)
        .take(mib)
        .map(Ok::<_, std::io::Error>);
    let name = storage_name(
        "t.bin",
        "bench",
        &uuid::Uuid::now_v7(),
        time::OffsetDateTime::now_utc(),
    );

    let t = Instant::now();
    let staged = remote.stage(&name, body, &[]).await?;
    let up = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let len = staged.digests.size;
    let mut s = remote
        .open_object_range(&name.rel_path(), len, 0, len)
        .await?;
    let mut got = 0u64;
    while let Some(c) = s.next().await {
        got += c?.len() as u64;
    }
    let down = t.elapsed().as_secs_f64();
    staged.discard().await?;
    println!(
        "{mib} MiB: PUT {:.1} MiB/s ({up:.2} s), GET {:.1} MiB/s ({down:.2} s), {got} bytes read",
        mib as f64 / up,
        mib as f64 / down
    );
    Ok(())
}
