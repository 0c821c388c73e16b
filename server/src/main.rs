//! `server`: runs ML-CHAT, or (`server admin ...`) manages administrators. Configuration comes from
//! environment variables (see the README).

use clap::{Parser, Subcommand};
use server::{admin::AdminCommand, config::Settings, startup::Application, telemetry};

#[derive(Debug, Parser)]
#[command(name = "server", version, about = "ML-CHAT: a real-time chat server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the app (the default).
    Serve,
    /// Print a new VAPID private key for `VAPID_PRIVATE_KEY` (web push).
    VapidKey,
    /// Manage administrator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads.
    let allocator_tuned = server::memory::return_large_blocks_to_the_system();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(allocator_tuned))
}

async fn run(allocator_tuned: bool) -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Needs no configuration: it is how production gets the one it requires.
    if matches!(cli.command, Some(Command::VapidKey)) {
        println!("{}", app::push::VapidKeys::generate_private_key());
        return Ok(());
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            // Telemetry is not set up yet (its own settings may be the invalid ones).
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init(&settings.log_filter, settings.log_format);
    if !allocator_tuned {
        tracing::warn!(
            "mallopt(M_MMAP_THRESHOLD) was refused: freed password-hash memory may be kept"
        );
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped(server::startup::shutdown_signal())
                .await
        }
        Command::Admin { command } => server::admin::run(&settings, command).await,
        Command::VapidKey => unreachable!("answered before the configuration is read"),
    }
}
