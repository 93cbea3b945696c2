use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use collector::config::{Cli, Config};

fn main() -> ExitCode {
    // Logs go to stderr so stdout carries only the "listening" line.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = Config::from_cli(&cli)
        .map_err(Into::into)
        .and_then(|config| collector::server::run(&config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vitalsign-collector: error: {e}");
            ExitCode::FAILURE
        }
    }
}
