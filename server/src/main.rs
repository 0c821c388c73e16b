//! `server`: runs ML-CHAT. Configuration comes from environment variables (see the README).

use server::{config::Settings, startup::Application, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            // Telemetry is not set up yet (its own settings may be the invalid ones).
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init(&settings.log_filter, settings.log_format);
    let app = Application::build(settings).await?;
    app.run_until_stopped(server::startup::shutdown_signal())
        .await
}
