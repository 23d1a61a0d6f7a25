//! The `dbmesh` command line: run the proxy, or check a configuration file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dbmesh",
    version,
    about = "A database-mesh proxy for MySQL and PostgreSQL"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration file, print every problem found, and exit.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(path) = cli.config else {
        eprintln!("dbmesh: --config FILE is required");
        return ExitCode::from(2);
    };
    let config = match dbmesh::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "dbmesh: {} problem(s) in {}",
                e.problems.len(),
                path.display()
            );
            return ExitCode::from(1);
        }
    };
    if let Some(Command::Check) = cli.command {
        println!("{}: OK", path.display());
        return ExitCode::SUCCESS;
    }
    init_logging(config.server.log_level.as_deref());
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.server.worker_threads {
        rt.worker_threads(n);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbmesh: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let server = match dbmesh::Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("dbmesh: cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        tokio::spawn(dbmesh::admin::reload::reload_on_sighup(
            server.runtime.clone(),
        ));
        wait_for_shutdown_signal().await;
        tracing::info!("shutting down");
        server.stop().await;
        ExitCode::SUCCESS
    })
}

fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match (std::env::var("RUST_LOG").ok(), level) {
        (Some(env), _) => EnvFilter::new(env),
        (None, Some(l)) => EnvFilter::new(l),
        (None, None) => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
