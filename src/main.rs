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
    init_logging(config.server.log_level.as_deref(), config.server.log_format);
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
        // Handlers first: a signal arriving while the listeners start must not kill the
        // process with the default action.
        let signals = match ShutdownSignals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("dbmesh: cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
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
        signals.wait().await;
        tracing::info!(
            timeout_ms = server.runtime.config().server.shutdown_timeout.as_millis() as u64,
            "shutting down: no new connections; open transactions may finish"
        );
        server.stop().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Logs go to stderr, filtered by `RUST_LOG` or else `[server] log_level`, as text or as
/// one JSON object per line (with the connection and statement spans) per `log_format`.
fn init_logging(level: Option<&str>, format: dbmesh::config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = match (std::env::var("RUST_LOG").ok(), level) {
        (Some(env), _) => EnvFilter::new(env),
        (None, Some(l)) => EnvFilter::new(l),
        (None, None) => EnvFilter::new("info"),
    };
    // Colours only on a terminal: stderr redirected to a file, journald or a container
    // log driver must not get ANSI escape codes in every line.
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        dbmesh::config::LogFormat::Text => fmt.init(),
        dbmesh::config::LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// SIGTERM (what container runtimes and systemd send) and SIGINT (Ctrl-C).
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<ShutdownSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
