//! Where the CLI keeps its files: the XDG base directories, with the usual fallbacks under
//! `$HOME`, and `BERTH_CLI_CONFIG` to point the CLI (or a system-wide agent) at another
//! config.yaml.

use std::path::{Path, PathBuf};

use super::errors::CliError;

/// `$NAME` when it is set to an absolute path (the XDG rule: relative values are ignored).
fn absolute_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn home() -> Result<PathBuf, CliError> {
    absolute_env("HOME").ok_or_else(|| {
        CliError::new("cannot find your home directory: $HOME is not set")
            .hint("set HOME, or XDG_CONFIG_HOME and XDG_CACHE_HOME")
    })
}

/// `$XDG_<kind>` or `~/<fallback>`, plus `berth`.
fn base(var: &str, fallback: &str) -> Result<PathBuf, CliError> {
    match absolute_env(var) {
        Some(dir) => Ok(dir.join("berth")),
        None => Ok(home()?.join(fallback).join("berth")),
    }
}

/// The CLI's config.yaml: `$BERTH_CLI_CONFIG`, else `$XDG_CONFIG_HOME/berth/config.yaml`, else
/// `~/.config/berth/config.yaml`.
pub fn config_file() -> Result<PathBuf, CliError> {
    if let Some(file) = std::env::var_os("BERTH_CLI_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(file));
    }
    Ok(base("XDG_CONFIG_HOME", ".config")?.join("config.yaml"))
}

/// The cached server configuration: `$XDG_CACHE_HOME/berth/config.json`, else
/// `~/.cache/berth/config.json`.
pub fn config_cache() -> Result<PathBuf, CliError> {
    Ok(base("XDG_CACHE_HOME", ".cache")?.join("config.json"))
}

/// The agent's log when not root: `$XDG_STATE_HOME/berth/agent.log`, else
/// `~/.local/state/berth/agent.log`.
pub fn agent_log() -> Result<PathBuf, CliError> {
    Ok(base("XDG_STATE_HOME", ".local/state")?.join("agent.log"))
}

/// `path` with the home directory written as `~`, for messages.
pub fn display(path: &Path) -> String {
    if let Some(home) = absolute_env("HOME")
        && let Ok(rest) = path.strip_prefix(&home)
    {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}
