//! Logging setup: human-readable or JSON lines on stdout, level from RUST_LOG (default info).
//!
//! Colour (ANSI escape codes) only for text logs written to a terminal, and never with `NO_COLOR` set: logs in
//! a pod go to a pipe or a file that collectors ingest, where escape codes are noise. JSON logs are never coloured.
use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Whether text logs on stdout are coloured: stdout is a terminal and `NO_COLOR` is unset or empty.
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(false).with_ansi(colour_stdout())).try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true).with_ansi(false)).try_init(),
    };
}
