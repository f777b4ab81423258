use clap::{Parser, Subcommand};

use artstore_gateway::config::{ServeArgs, Settings};
use artstore_gateway::{bootstrap, index_backup, logging, progress, server};

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
    /// Rebuild (server stopped) or check (also while it runs) the index against the sidecars
    /// on disk. Accounts, grants, keys and audit events are not on disk: restore those from a
    /// backup.
    Index {
        #[command(subcommand)]
        action: IndexAction,
    },
    /// Manage service accounts (works while the server runs).
    Account {
        #[command(subcommand)]
        action: artstore_gateway::account_cli::AccountAction,
    },
    /// Manage token signing keys.
    Keys {
        #[command(subcommand)]
        action: artstore_gateway::account_cli::KeysAction,
    },
    /// Manage storage elements (buckets) and their modes.
    Element {
        #[command(subcommand)]
        action: artstore_gateway::element_cli::ElementAction,
    },
    /// Search the objects as the admin API does, with an operator's reach (works while the
    /// server runs). A table on a terminal, JSON otherwise.
    Search(artstore_gateway::search_cli::SearchArgs),
    /// Write a consistent copy of the SQLite index (works while the server runs).
    Backup {
        /// The backup file to create; never overwritten.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        common: ServeArgs,
    },
    /// Put a backup from `artstore backup` in place as the SQLite index (stop the server first).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: std::path::PathBuf,
        /// Replace an existing index (it is kept beside the new one).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: ServeArgs,
    },
}

#[derive(Subcommand)]
enum IndexAction {
    /// Re-create every missing or stale index row from the attr.json sidecars (refuses while
    /// a server runs on the data dir).
    Rebuild(ServeArgs),
    /// Re-hash every object; report missing files, orphans, size and checksum mismatches.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Also repair (stop the server first): remove files the index records as obsolete and
    /// temp files, drop rows whose files are all gone, and move anything doubtful to
    /// `<element>/.quarantine/<date>/`. Prints what it did as JSON.
    #[arg(long)]
    repair: bool,
    #[command(flatten)]
    common: ServeArgs,
}

/// Prints the report as JSON on stdout; verify fails when it finds damage.
async fn index(action: IndexAction, settings: &Settings) -> anyhow::Result<()> {
    let store = bootstrap::open_store(settings).await?;
    // A rebuild beside a live server would take its writes in flight for lost work: it runs
    // alone on the data dir, or not at all (before it changes anything).
    let _alone = match action {
        IndexAction::Rebuild(_) => Some(
            index_backup::hold_alone(&settings.data_dir)
                .map_err(|e| e.context("artstore index rebuild refused: nothing was changed"))?,
        ),
        IndexAction::Verify(_) => None,
    };
    let backends = bootstrap::backends(settings, &store);
    // A bar on stderr when it is a terminal; the JSON report on stdout either way.
    let work = std::sync::Arc::new(artstore_admin::progress::WorkProgress::new());
    let bar = progress::watch(progress::interactive(false), work.clone());
    let mut m =
        artstore_admin::maintenance::Maintenance::new(store.clone(), backends).with_progress(work);
    match action {
        IndexAction::Rebuild(_) => {
            let report = async {
                let report = m.reconcile(None).await?;
                // The search rows follow the object rows just made to match the sidecars.
                store.reindex_search().await?;
                anyhow::Ok(report)
            }
            .await;
            bar.finish().await;
            let report = report?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            for what in report.warnings() {
                tracing::warn!("{what}");
            }
        }
        IndexAction::Verify(VerifyArgs { repair: false, .. }) => {
            if index_backup::server_running(&settings.data_dir)? {
                tracing::info!(
                    "a server runs on this data dir: writes in flight are not reported as damage"
                );
                m = m.beside_writers(artstore_admin::maintenance::IN_FLIGHT_GRACE);
            }
            let report = m.verify().await;
            bar.finish().await;
            let report = report?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.is_clean(), "the index and the disk disagree");
        }
        IndexAction::Verify(VerifyArgs { repair: true, .. }) => {
            // A write in flight has temp files and half-removed files that are not garbage.
            let _alone = index_backup::hold_alone(&settings.data_dir)?;
            let today = time::OffsetDateTime::now_utc().date();
            let label = format!(
                "{:04}{:02}{:02}",
                today.year(),
                u8::from(today.month()),
                today.day()
            );
            let report = m.repair(&label).await;
            bar.finish().await;
            let report = report?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(
                report.after.is_clean(),
                "damage remains that only the operator can repair (see \"left\")"
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match &cli.command {
        Command::Serve(a) | Command::Migrate(a) => a,
        Command::Index {
            action: IndexAction::Rebuild(a) | IndexAction::Verify(VerifyArgs { common: a, .. }),
        } => a,
        Command::Element { action } => action.common(),
        Command::Account { action } => action.common(),
        Command::Keys { action } => action.common(),
        Command::Search(a) => &a.common,
        Command::Backup { common, .. } | Command::Restore { common, .. } => common,
    };
    logging::init(Settings::log_format_hint(args).as_deref());
    let settings = Settings::resolve(args)?;
    let result = match cli.command {
        Command::Serve(_) => server::serve(settings).await,
        Command::Migrate(_) => bootstrap::create_store(&settings).await.map(|_| {
            tracing::info!("migrations applied");
        }),
        Command::Index { action } => index(action, &settings).await,
        Command::Element { action } => artstore_gateway::element_cli::run(action, &settings).await,
        Command::Account { action } => artstore_gateway::account_cli::run(action, &settings).await,
        Command::Keys { action } => {
            artstore_gateway::account_cli::run_keys(action, &settings).await
        }
        Command::Search(a) => artstore_gateway::search_cli::run(a, &settings).await,
        Command::Backup { out, .. } => index_backup::backup(&settings, &out).await,
        Command::Restore { from, force, .. } => {
            index_backup::restore(&settings, &from, force).await
        }
    };
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "artstore failed");
    }
    result
}
