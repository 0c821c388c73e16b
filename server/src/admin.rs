//! `server admin create|promote`: set up administrators from the command line, against the configured
//! store. With the embedded store, run it while the server is stopped (the data file is locked by the
//! running server); with MongoDB, any time.

use crate::config::Settings;
use anyhow::Context;
use app::admin::bootstrap::{self, AdminBootstrap};
use app::auth::password::Passwords;
use clap::Subcommand;
use std::io::BufRead;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a new administrator account. The password is read from ADMIN_PASSWORD, or from the first
    /// line of standard input (never from the command line, where other users could see it).
    Create {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Give an existing account the admin role.
    Promote { username: String },
}

pub async fn run(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    let store = app::store::open(&settings.store)
        .await
        .context("opening the store (check DATA_DIR or MONGODB_URI; with the embedded store, stop the server first)")?;
    let outcome = match command {
        AdminCommand::Create {
            username,
            display_name,
        } => {
            let password = match std::env::var("ADMIN_PASSWORD") {
                Ok(password) if !password.is_empty() => password,
                _ => read_password_line()?,
            };
            let passwords = Passwords::new(1);
            bootstrap::create_admin(
                &store,
                &passwords,
                &username,
                &password,
                display_name.as_deref(),
            )
            .await
            .map_err(|e| e.to_string())
        }
        AdminCommand::Promote { username } => bootstrap::promote_to_admin(&store, &username)
            .await
            .map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(AdminBootstrap::Created) => println!("created the administrator account"),
        Ok(AdminBootstrap::Promoted) => println!("the account is an administrator now"),
        Ok(AdminBootstrap::AlreadyAdmin) => println!("the account already is an administrator"),
        Err(e) => anyhow::bail!("{e}"),
    }
    Ok(())
}

fn read_password_line() -> anyhow::Result<String> {
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "no password given (set ADMIN_PASSWORD or pipe one line)"
    );
    Ok(password)
}
