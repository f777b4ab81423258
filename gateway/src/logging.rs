use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Human logs on a terminal, JSON lines otherwise; both on stderr. `RUST_LOG` filters.
/// s3s logs every failed operation at ERROR (NoSuchKey included) and every 5xx response
/// (501 and 503 SlowDown included), so both logs are off and the server logs each response
/// itself at a level that fits its status.
pub fn init(format: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("s3s::ops=off".parse().unwrap_or_default())
        .add_directive("s3s::service=off".parse().unwrap_or_default());
    let json = match format {
        Some("json") => true,
        Some(_) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
