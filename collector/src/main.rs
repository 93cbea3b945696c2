use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use collector::config::{Cli, Config, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vitalsign-collector: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Logs go to stderr so stdout carries only the "listening" line.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match config.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    match collector::server::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vitalsign-collector: error: {e}");
            ExitCode::FAILURE
        }
    }
}
