//! SIGHUP: read and check the config file again. A file with problems is refused, each problem
//! logged with its key, and the running config stays. Keys that cannot change while running
//! keep their running value, each said in the log; the rest goes to the core as
//! `Input::Reconfigure`.

use crate::config::{Config, ConfigError, SecretSource};

/// What the running process cannot change: the link's address and secret, the store, the
/// metrics endpoint. Returns the keys whose value in the file differs.
fn fixed_keys(running: &Config, file: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if running.component.jid != file.component.jid {
        keys.push("component.jid");
    }
    if running.component.server != file.component.server {
        keys.push("component.server");
    }
    if !same_secret_source(&running.component.secret, &file.component.secret) {
        keys.push("component.secret");
    }
    if running.store.path != file.store.path {
        keys.push("store.path");
    }
    if running.store.synchronous != file.store.synchronous {
        keys.push("store.synchronous");
    }
    // The store thread was started with it.
    if running.store.retain_days != file.store.retain_days {
        keys.push("store.retain_days");
    }
    if running.metrics != file.metrics {
        keys.push("metrics.listen");
    }
    keys
}

fn same_secret_source(a: &SecretSource, b: &SecretSource) -> bool {
    match (a, b) {
        (SecretSource::Inline(x), SecretSource::Inline(y)) => x == y,
        (SecretSource::File(x), SecretSource::File(y)) => x == y,
        (SecretSource::Unset, SecretSource::Unset) => true,
        _ => false,
    }
}

/// The config to run with from now on, or `None` (logged) when the file is refused.
pub fn reread(running: &Config) -> Option<Config> {
    let file = match Config::load(&running.path) {
        Ok(c) => c,
        Err(ConfigError::Invalid { path, problems }) => {
            for p in &problems {
                tracing::error!(file = %path.display(), key = %p.key, problem = %p.message, "config problem");
            }
            tracing::error!(file = %path.display(), problems = problems.len(), "reload refused: the running config stays (fix the file and send SIGHUP again; `frontdesk check-config` lists the problems)");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "reload refused: the running config stays");
            return None;
        }
    };
    for key in fixed_keys(running, &file) {
        tracing::warn!(key, "changed in the file, but it cannot change while running: the running value stays until frontdesk is restarted");
    }
    if file.limits.stanza_bytes != running.limits.stanza_bytes
        || file.limits.depth != running.limits.depth
        || file.limits.children != running.limits.children
    {
        tracing::info!("limits.stanza_bytes, depth and children apply to the link from its next connection; the other limits apply now");
    }
    let mut next = file;
    next.component = running.component.clone();
    next.store = running.store.clone();
    next.metrics = running.metrics.clone();
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(extra: &str, jid: &str) -> Config {
        let text = format!(
            "[component]\njid = \"{jid}\"\nserver = \"127.0.0.1:5347\"\nsecret = \"s\"\n[store]\npath = \"x.db\"\n{extra}\n[[sites]]\nid = \"acme\"\nstaff = []\n"
        );
        Config::parse(&text, Path::new("/etc/f.toml")).unwrap()
    }

    #[test]
    fn keys_that_need_a_restart_are_named() {
        let running = parse("", "chat.example.com");
        assert!(fixed_keys(&running, &running).is_empty());
        let file = parse(
            "[metrics]\nlisten = \"127.0.0.1:9105\"\n",
            "chat2.example.com",
        );
        assert_eq!(
            fixed_keys(&running, &file),
            vec!["component.jid", "metrics.listen"]
        );
    }
}
