use clap::{Parser, Subcommand};

use artstore_gateway::config::{ServeArgs, Settings};
use artstore_gateway::{bootstrap, logging, server};

/// ArtStore: an S3 gateway for long-term document storage.
#[derive(Parser)]
#[command(name = "artstore", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the S3 endpoint and the admin API.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match &cli.command {
        Command::Serve(a) | Command::Migrate(a) => a,
    };
    logging::init(Settings::log_format_hint(args).as_deref());
    let settings = Settings::resolve(args)?;
    let result = match cli.command {
        Command::Serve(_) => server::serve(settings).await,
        Command::Migrate(_) => bootstrap::open_store(&settings).await.map(|_| {
            tracing::info!("migrations applied");
        }),
    };
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "artstore failed");
    }
    result
}
