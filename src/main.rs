//! The `frontdesk` binary: logging, then the command line. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = frontdesk::cli::Cli::parse();
    let default = match cli.command {
        frontdesk::cli::Command::Run(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
