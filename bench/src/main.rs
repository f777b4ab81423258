//! artstore-bench: drives ArtStore (or any S3-compatible endpoint) with concurrent clients and
//! reports throughput, latency percentiles and the server's peak RSS. See bench/README.md.

mod args;
mod client;
mod dataset;
mod report;
mod rss;
mod scenarios;
mod search;
mod spawn;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::args::Args;
use crate::client::S3Client;
use crate::report::Facts;
use crate::scenarios::Ctx;
use crate::spawn::Server;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        tokio::select! {
            r = run(args) => match r {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            },
            // Dropping `run` kills a spawned server and removes its temp dir.
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted");
                ExitCode::from(130)
            }
        }
    })
}

/// Runs the selected scenarios; `Ok(false)` when some request failed.
async fn run(args: Args) -> Result<bool> {
    let argv: Vec<String> = std::env::args().collect();
    let command = args::redacted_command_line(&argv);
    if args.scenario == args::Scenario::Search {
        let mut facts = Facts::gather(command.clone(), "spawned, see below".into());
        facts.spawned = args.spawn.as_ref().map(|b| b.display().to_string());
        println!("{}", facts.text());
        return search::run(&args, &command).await;
    }

    let mut server = match &args.spawn {
        Some(bin) => {
            eprintln!("starting {} …", bin.display());
            let s = Server::spawn(
                bin,
                args.data_dir.as_deref(),
                args.database_url.as_deref(),
                &args.access_key,
                &args.secret_key,
                &args.region,
            )
            .await?;
            eprintln!(
                "server pid {} listening on {} (admin {})",
                s.pid, s.s3_addr, s.admin_addr
            );
            Some(s)
        }
        None => None,
    };
    let endpoint = server
        .as_ref()
        .map_or_else(|| args.endpoint.clone(), Server::endpoint);
    let server_pid = server.as_ref().map(|s| s.pid).or(args.server_pid);

    let mut facts = Facts::gather(command, endpoint.clone());
    facts.server_pid = server_pid;
    if let (Some(bin), Some(s)) = (&args.spawn, &server) {
        facts.spawned = Some(bin.display().to_string());
        facts.data_dir = Some(s.data_dir.display().to_string());
    }
    let out_table = |text: &str| {
        if args.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    out_table(&facts.text());

    let client = S3Client::new(
        &endpoint,
        &args.access_key,
        &args.secret_key,
        &args.region,
        (args.concurrency as usize).max(scenarios_pool_min()),
        Duration::from_secs_f64(args.timeout_secs),
    )?;
    client
        .create_bucket(&args.bucket)
        .await
        .with_context(|| format!("create bucket {}", args.bucket))?;

    let ctx = Ctx::new(client, &args, server_pid);
    let mut all_ok = true;
    for s in args.scenario.expand() {
        if let Some(srv) = server.as_mut() {
            srv.check_alive()?;
        }
        eprintln!("scenario {} …", s.name());
        let r = scenarios::run(&ctx, &args, s).await?;
        all_ok &= r.errors() == 0;
        out_table(&format!("\n{}", report::table(&r)));
        if args.json {
            println!("{}", report::json(&r, &facts));
        }
    }
    if let Some(srv) = server {
        srv.shutdown().await?;
    }
    Ok(all_ok)
}

/// Connections kept idle for the parallel part of `large` even at --concurrency 1.
fn scenarios_pool_min() -> usize {
    args::LARGE_PARALLEL
}
