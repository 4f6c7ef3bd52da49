//! The `frontdesk` binary: logging, then the command line. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use frontdesk::cli::{Cli, Command};
use frontdesk::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match frontdesk::cli::execute(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(e) => {
            // Most messages already name their cause; add only causes not yet said.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("frontdesk: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, as text or JSON (`[log] format`). The filter is `RUST_LOG` if set, else
/// `[log] level` for `run`, else `info` for `run` and `warn` for the commands that print.
fn init_logging(cli: &Cli) {
    let log = LogConfig::peek(cli.command.config_path());
    let default = match (&cli.command, &log.level) {
        (Command::Run(_), Some(level)) => level.as_str(),
        (Command::Run(_), None) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
