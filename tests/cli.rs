//! The `frontdesk` binary as a user meets it: config checking, the sessions and transcript
//! commands (table and JSON), the one-instance lock, and a clean stop on SIGTERM.
//! Conversations against a real XMPP server are in tests/integration/ (ejabberd + slixmpp).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use frontdesk::address::SiteId;
use frontdesk::store::{
    InstanceLock, MessageRecord, Role, SessionRecord, SessionState, Store, StoreOp,
};
use frontdesk::time::Timestamp;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};

const BIN: &str = env!("CARGO_BIN_EXE_frontdesk");

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("frontdesk.toml");
    let text = format!(
        r#"[component]
jid = "chat.localhost"
server = "127.0.0.1:1"
secret = "s3cret"

[store]
path = "data/frontdesk.db"

[[sites]]
id = "acme"
name = "ACME Inc."
staff = ["alice_acme@localhost"]
{extra}"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn frontdesk(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FRONTDESK_SECRET")
        .env_remove("FRONTDESK_CONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let o = frontdesk(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("OK") && out.contains("chat.localhost") && out.contains("1 site"),
        "{out}"
    );
    // A site without tokens is allowed, with a warning saying what it risks.
    assert!(
        out.contains("warning: site \"acme\" has no token_secret"),
        "{out}"
    );
    let cfg = write_config(dir.path(), "token_secret = \"0123456789abcdef0123\"\n");
    let o = frontdesk(&["check-config", "--config", cfg.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && !out.contains("token_secret"), "{out}");
}

#[test]
fn check_config_names_every_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "colour = \"blue\"\n\n[[sites]]\nid = \"glo_bex\"\n",
    );
    let o = frontdesk(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("sites[0].colour"), "{err}");
    assert!(err.contains("sites[1].id"), "{err}");
}

#[test]
fn a_missing_config_file_says_how_to_point_at_one() {
    let o = frontdesk(&["check-config", "--config", "/nonexistent/frontdesk.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--config"), "{}", stderr(&o));
}

#[test]
fn sessions_without_a_database_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let o = frontdesk(&["sessions", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("frontdesk run"), "{}", stderr(&o));
}

fn seed(db: &Path) {
    let t = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let session = |id: i64, visitor: &str, state, staff: Option<&str>| SessionRecord {
        id,
        room: BareJid::new(&format!("{visitor}_acme@chat.localhost")).unwrap(),
        site: SiteId::new("acme").unwrap(),
        visitor: visitor.into(),
        state,
        staff: staff.map(|s| BareJid::new(s).unwrap()),
        visitor_jid: Some(FullJid::new("x@anon.localhost/r").unwrap()),
        created_at: t,
        updated_at: t.plus_millis(5000),
        closed_at: (state == SessionState::Closed).then_some(t.plus_millis(9000)),
    };
    let line = |role, nick: &str, body: &str, n: i64| {
        StoreOp::AppendMessage(MessageRecord {
            session_id: 1,
            at: t.plus_millis(n * 1000),
            role,
            from_jid: Jid::new(if role == Role::Staff {
                "alice_acme@localhost/desk"
            } else {
                "x@anon.localhost/r"
            })
            .unwrap(),
            nick: nick.into(),
            body: body.into(),
            stanza_id: format!("1-{n}"),
            origin_id: None,
        })
    };
    let mut store = Store::open(db).unwrap();
    store
        .apply(&[
            StoreOp::OpenSession(session(
                1,
                "v1",
                SessionState::Chatting,
                Some("alice_acme@localhost"),
            )),
            StoreOp::OpenSession(session(2, "v2", SessionState::Closed, None)),
            line(Role::Visitor, "Ann", "Hello <there> & \"you\"", 1),
            line(Role::Staff, "Alice", "Hi Ann", 2),
        ])
        .unwrap();
}

#[test]
fn sessions_and_transcript_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    seed(&dir.path().join("data/frontdesk.db"));
    let c = cfg.to_str().unwrap();

    let o = frontdesk(&["sessions", "--config", c, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let mut keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "closed_at",
            "created_at",
            "id",
            "missed",
            "room",
            "site",
            "staff",
            "state",
            "tags",
            "updated_at",
            "visitor"
        ]
    );
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["room"], "v1_acme@chat.localhost");
    assert_eq!(rows[0]["state"], "CHATTING");
    assert_eq!(rows[0]["staff"], "alice_acme@localhost");
    assert_eq!(rows[0]["closed_at"], serde_json::Value::Null);
    assert_eq!(rows[0]["created_at"], "2026-11-22T10:00:00.000Z");
    assert_eq!(rows[1]["state"], "CLOSED");
    assert_eq!(rows[1]["staff"], serde_json::Value::Null);
    assert_eq!(rows[1]["closed_at"], "2026-11-22T10:00:09.000Z");

    let o = frontdesk(&["sessions", "--config", c, "--json", "--state", "closed"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let o = frontdesk(&["sessions", "--config", c, "--json", "--site", "globex"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let o = frontdesk(&["sessions", "--config", c, "--state", "SLEEPING"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects an unknown state");

    let o = frontdesk(&["transcript", "1", "--config", c, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = v.as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["role"], "visitor");
    assert_eq!(lines[0]["from"], "x@anon.localhost/r");
    assert_eq!(lines[0]["nick"], "Ann");
    assert_eq!(lines[0]["body"], "Hello <there> & \"you\"");
    assert_eq!(lines[0]["at"], "2026-11-22T10:00:01.000Z");
    assert_eq!(lines[1]["role"], "staff");

    let o = frontdesk(&["transcript", "1", "--config", c]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Ann (visitor): Hello <there>") && text.contains("Alice (staff): Hi Ann"),
        "{text}"
    );
    let o = frontdesk(&["transcript", "99", "--config", c]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no session #99"));
}

/// Rows whose addresses do not parse (put in by hand, or by another writer) are left out when
/// `run` resumes, but the listings still show them as they are.
#[test]
fn sessions_and_transcript_show_rows_that_do_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let db = dir.path().join("data/frontdesk.db");
    seed(&db);
    Store::open(&db)
        .unwrap()
        .conn()
        .execute_batch(
            "UPDATE sessions SET room = '@chat.localhost', staff = '@x' WHERE id = 1;
             UPDATE messages SET from_jid = '@anon.localhost/r' WHERE stanza_id = '1-1';",
        )
        .unwrap();
    let c = cfg.to_str().unwrap();

    let o = frontdesk(&["sessions", "--config", c, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["room"], "@chat.localhost");
    assert_eq!(rows[0]["staff"], "@x");
    let o = frontdesk(&["sessions", "--config", c]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("@chat.localhost"));

    let o = frontdesk(&["transcript", "1", "--config", c, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = v.as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["from"], "@anon.localhost/r");
    let o = frontdesk(&["transcript", "1", "--config", c]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("@chat.localhost") && text.contains("with @x"),
        "{text}"
    );
}

#[test]
fn run_refuses_a_database_held_by_another_instance() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let db = dir.path().join("data/frontdesk.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let _held = InstanceLock::acquire(&db).unwrap();
    let o = frontdesk(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("another frontdesk"), "{}", stderr(&o));
}

#[test]
fn run_without_any_secret_says_where_to_put_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("secret = \"s3cret\"\n", "");
    std::fs::write(&cfg, text).unwrap();
    let o = frontdesk(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("FRONTDESK_SECRET"), "{}", stderr(&o));
}

/// With no server listening, `run` retries; SIGTERM stops it cleanly with status 0.
#[test]
fn run_retries_an_absent_server_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "frontdesk=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let retrying = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("retrying") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    assert!(retrying, "no retry logged within 10 s: {seen:?}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "frontdesk did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    // The database was created and is usable after the stop.
    let o = frontdesk(&["sessions", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `frontdesk token` prints `<expires>.<hex>` that verifies for exactly that visitor and site.
#[test]
fn token_prints_a_token_that_verifies_and_refuses_sites_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme.key"), "a-long-enough-token-secret\n").unwrap();
    let cfg = write_config(
        dir.path(),
        "token_secret_file = \"acme.key\"\n\n[[sites]]\nid = \"globex\"\n",
    );
    let c = cfg.to_str().unwrap();
    let before = Timestamp::now().millis() / 1000;
    let o = frontdesk(&[
        "token",
        "--site",
        "acme",
        "--visitor",
        "v1",
        "--ttl",
        "600",
        "--config",
        c,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let (expires, hex) = token.split_once('.').unwrap();
    let expires: i64 = expires.parse().unwrap();
    assert!((before + 600..=before + 602).contains(&expires), "{token}");
    assert_eq!(hex.len(), 64, "{token}");
    let secret = frontdesk::token::TokenSecret::new(b"a-long-enough-token-secret".to_vec());
    assert_eq!(
        frontdesk::token::verify(&secret, "v1", "acme", Some(&token), before),
        Ok(frontdesk::token::Details::default())
    );
    assert!(frontdesk::token::verify(&secret, "v2", "acme", Some(&token), before).is_err());

    // With details signed in.
    let o = frontdesk(&[
        "token",
        "--site",
        "acme",
        "--visitor",
        "v1",
        "--name",
        "Ann Smith",
        "--email",
        "ann@example.com",
        "--user-id",
        "4711",
        "--config",
        c,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let d = frontdesk::token::verify(&secret, "v1", "acme", Some(&token), before).unwrap();
    assert_eq!(
        (d.name.as_deref(), d.email.as_deref(), d.user_id.as_deref()),
        (Some("Ann Smith"), Some("ann@example.com"), Some("4711"))
    );
    let long = "x".repeat(101);
    let o = frontdesk(&[
        "token",
        "--site",
        "acme",
        "--visitor",
        "v1",
        "--name",
        &long,
        "--config",
        c,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("at most 100 characters of name"),
        "{}",
        stderr(&o)
    );

    let o = frontdesk(&[
        "token",
        "--site",
        "globex",
        "--visitor",
        "v1",
        "--config",
        c,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("has no token_secret"), "{}", stderr(&o));
    let o = frontdesk(&["token", "--site", "nope", "--visitor", "v1", "--config", c]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("sites: acme, globex"), "{}", stderr(&o));
}

#[test]
fn check_config_names_a_short_or_doubled_token_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "token_secret = \"short\"\n");
    let o = frontdesk(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("sites[0].token_secret: must be at least 16 bytes"),
        "{}",
        stderr(&o)
    );
    let cfg = write_config(
        dir.path(),
        "token_secret = \"0123456789abcdef0\"\ntoken_secret_file = \"x\"\n",
    );
    let o = frontdesk(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("sites[0].token_secret_file: set either"),
        "{}",
        stderr(&o)
    );
}

/// What visitors write reaches an operator's terminal one entry per message, with no control
/// sequences and no line that could pass for another entry; --json keeps it byte for byte.
#[test]
fn transcript_text_cannot_forge_entries_or_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let db = dir.path().join("data/frontdesk.db");
    seed(&db);
    let t = Timestamp::parse_rfc3339("2026-11-22T10:01:00Z").unwrap();
    let hostile = "ok\n2026-11-22T10:02:00Z  carol_beta (staff): Refund approved\u{2028}x\u{85}y\r\u{9B}2J\u{1B}[31m\u{202E}gnp.exe";
    let mut store = Store::open(&db).unwrap();
    store
        .apply(&[StoreOp::AppendMessage(MessageRecord {
            session_id: 1,
            at: t,
            role: Role::Visitor,
            from_jid: Jid::new("x@anon.localhost/r").unwrap(),
            nick: "Ann\u{202E}".into(),
            body: hostile.into(),
            stanza_id: "1-3".into(),
            origin_id: None,
        })])
        .unwrap();
    drop(store);
    let c = cfg.to_str().unwrap();
    let o = frontdesk(&["transcript", "1", "--config", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for line in text.lines().skip(1) {
        let entry = line.starts_with("2026-")
            && (line.contains(" (visitor): ") || line.contains(" (staff): "));
        assert!(
            entry || line.starts_with("    │ "),
            "a line that is no entry: {line:?}\n{text}"
        );
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c)),
            "{line:?}"
        );
    }
    assert_eq!(text.matches("carol_beta (staff)").count(), 1, "{text}");
    assert!(
        text.contains("    │ 2026-11-22T10:02:00Z  carol_beta (staff): Refund approved"),
        "{text}"
    );
    // JSON stays exact.
    let o = frontdesk(&["transcript", "1", "--config", c, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v.as_array().unwrap().iter().any(|m| m["body"] == hostile),
        "{v}"
    );
}

/// Runs `frontdesk ARGS` with stdout a pipe that is closed after the first byte, as
/// `frontdesk ... | head -c1` does; returns the exit code and stderr.
fn into_closed_pipe(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("FRONTDESK_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    let n = stdout.read(&mut first).unwrap();
    assert_eq!(n, 1, "{args:?} printed nothing");
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    (o.status.code(), stderr(&o))
}

/// `frontdesk transcript N --json | head` and the like: the reader going away is not an error.
#[test]
fn output_into_a_closed_pipe_ends_quietly_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let db = dir.path().join("data/frontdesk.db");
    seed(&db);
    // Far more than a pipe holds (64 KiB), so the writer is still writing when the pipe closes.
    let t = Timestamp::parse_rfc3339("2026-11-22T11:00:00Z").unwrap();
    let mut store = Store::open(&db).unwrap();
    let body = "x".repeat(300);
    let ops: Vec<StoreOp> = (0..2000)
        .map(|n| {
            StoreOp::AppendMessage(MessageRecord {
                session_id: 1,
                at: t.plus_millis(n),
                role: Role::Visitor,
                from_jid: Jid::new("x@anon.localhost/r").unwrap(),
                nick: "Ann".into(),
                body: body.clone(),
                stanza_id: format!("p-{n}"),
                origin_id: None,
            })
        })
        .collect();
    store.apply(&ops).unwrap();
    drop(store);
    let c = cfg.to_str().unwrap();
    for args in [
        vec!["transcript", "1", "--config", c, "--json"],
        vec!["transcript", "1", "--config", c],
        vec!["sessions", "--config", c],
        vec!["sessions", "--config", c, "--json"],
        vec!["check-config", "--config", c],
    ] {
        let (code, err) = into_closed_pipe(&args, &[]);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} printed to stderr: {err}");
    }
}

/// The docs say FRONTDESK_SECRET overrides the file's secret keys: an empty `secret = ""`
/// and a `secret_file` that is not there (the packaged config before its secret is made).
#[test]
fn frontdesk_secret_stands_in_for_an_empty_secret_or_a_missing_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    for replacement in ["secret = \"\"", "secret_file = \"no/such/secret\""] {
        let cfg = write_config(dir.path(), "");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("secret = \"s3cret\"", replacement);
        std::fs::write(&cfg, text).unwrap();
        let c = cfg.to_str().unwrap();
        let o = Command::new(BIN)
            .args(["check-config", "--config", c])
            .env("FRONTDESK_SECRET", "from-env")
            .output()
            .unwrap();
        assert!(o.status.success(), "{replacement}: {}", stderr(&o));
        // Without it, the problem is named with what to do.
        let o = frontdesk(&["check-config", "--config", c]);
        assert_eq!(o.status.code(), Some(1), "{replacement}");
        assert!(
            stderr(&o).contains("FRONTDESK_SECRET") || stderr(&o).contains("no/such/secret"),
            "{replacement}: {}",
            stderr(&o)
        );
    }
}

/// A secret file others can read is allowed but warned about, with the chmod that fixes it.
#[test]
fn a_secret_file_readable_by_others_is_named_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    let token = dir.path().join("acme.key");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::write(&token, "a-long-enough-token-secret\n").unwrap();
    let cfg = write_config(dir.path(), "token_secret_file = \"acme.key\"\n");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("secret = \"s3cret\"", "secret_file = \"secret\"");
    std::fs::write(&cfg, text).unwrap();
    let c = cfg.to_str().unwrap();
    for (mode, warned) in [(0o644, true), (0o604, true), (0o640, false), (0o600, false)] {
        for f in [&secret, &token] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let o = frontdesk(&["check-config", "--config", c]);
        assert!(o.status.success(), "{}", stderr(&o));
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        for f in [&secret, &token] {
            let line = format!(
                "is readable by every user on this machine (mode {mode:o}): run chmod o-rwx {}",
                f.display()
            );
            assert_eq!(
                all.contains(&line),
                warned,
                "mode {mode:o}, {}: {all}",
                f.display()
            );
        }
    }
}

/// Starts `frontdesk run` (no server listening: it retries) with `env`, collects its stderr
/// lines until one contains `until` (at most 10 s), then stops it with SIGTERM.
fn run_until(cfg: &Path, env: &[(&str, &str)], until: &str) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config", cfg.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let done = line.contains(until);
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains(until)),
        "no {until:?} within 10 s: {seen:?}"
    );
    seen
}

/// `[log] format = "json"`: every line is one JSON object with level, target and fields.
#[test]
fn json_logs_are_one_object_per_line_with_level_target_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "\n[log]\nformat = \"json\"\n");
    let lines = run_until(&cfg, &[], "retrying");
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(
            v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("frontdesk")),
            "{line}"
        );
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    let start = lines
        .iter()
        .find(|l| l.contains("frontdesk starting"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(start).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["version"], env!("CARGO_PKG_VERSION"));
}

/// `[log] level` sets the filter of `run`; RUST_LOG, when set, wins.
#[test]
fn log_level_comes_from_the_config_unless_rust_log_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "\n[log]\nlevel = \"warn\"\n");
    // The retry is a warning; "frontdesk starting" (info, logged before it) must be filtered.
    let lines = run_until(&cfg, &[], "retrying");
    assert!(
        !lines.iter().any(|l| l.contains("frontdesk starting")),
        "{lines:?}"
    );
    let lines = run_until(&cfg, &[("RUST_LOG", "info")], "retrying");
    assert!(
        lines.iter().any(|l| l.contains("frontdesk starting")),
        "{lines:?}"
    );
    // A bad level is named by check-config with its key.
    let cfg = write_config(dir.path(), "\n[log]\nlevel = \"loud\"\nformat = \"xml\"\n");
    let o = frontdesk(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("log.level: \"loud\"") && stderr(&o).contains("log.format: \"xml\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn backup_copies_a_live_database_that_sessions_and_transcript_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let db = dir.path().join("data/frontdesk.db");
    seed(&db);
    // As while frontdesk runs: its lock held and its connection open.
    let _lock = InstanceLock::acquire(&db).unwrap();
    let _live = Store::open(&db).unwrap();
    let c = cfg.to_str().unwrap();
    let copy = dir.path().join("copy.db");
    let to = copy.to_str().unwrap();
    let o = frontdesk(&["backup", "--config", c, "--to", to]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("2 session(s), 2 message(s)"), "{out}");
    let o = frontdesk(&["transcript", "1", "--db", to]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("Alice (staff): Hi Ann"),
        "{out}{}",
        stderr(&o)
    );
    let o = frontdesk(&["sessions", "--db", to, "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    // Never over an existing file unless told.
    let o = frontdesk(&["backup", "--config", c, "--to", to]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = frontdesk(&["backup", "--config", c, "--to", to, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Sessions 1 (closed 2026-01-10, 3 lines), 2 (open, 1 line), 3 (closed 2026-03-01), 4
/// (closed 2026-01-05 on site globex, 1 line), 5 (closed 2026-01-01, the newest).
fn seed_for_purge(db: &Path) {
    let day = |d: &str| Timestamp::parse_rfc3339(&format!("{d}T12:00:00Z")).unwrap();
    let session = |id: i64, site: &str, closed: Option<&str>| {
        StoreOp::OpenSession(SessionRecord {
            id,
            room: BareJid::new(&format!("v{id}_{site}@chat.localhost")).unwrap(),
            site: SiteId::new(site).unwrap(),
            visitor: format!("v{id}"),
            state: if closed.is_some() {
                SessionState::Closed
            } else {
                SessionState::Active
            },
            staff: None,
            visitor_jid: None,
            created_at: day("2025-12-01"),
            updated_at: day("2025-12-01"),
            closed_at: closed.map(day),
        })
    };
    let line = |session_id: i64, n: i64| {
        StoreOp::AppendMessage(MessageRecord {
            session_id,
            at: day("2025-12-01"),
            role: Role::Visitor,
            from_jid: Jid::new("x@anon.localhost/r").unwrap(),
            nick: "V".into(),
            body: format!("line {n}"),
            stanza_id: format!("{session_id}-{n}"),
            origin_id: None,
        })
    };
    let ops = [
        session(1, "acme", Some("2026-01-10")),
        session(2, "acme", None),
        session(3, "acme", Some("2026-03-01")),
        session(4, "globex", Some("2026-01-05")),
        session(5, "acme", Some("2026-01-01")),
        line(1, 1),
        line(1, 2),
        line(1, 3),
        line(2, 1),
        line(4, 1),
    ];
    Store::open(db).unwrap().apply(&ops).unwrap();
}

fn session_ids(c: &str) -> Vec<i64> {
    let o = frontdesk(&["sessions", "--config", c, "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut ids: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn purge_deletes_only_old_closed_sessions_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "\n[[sites]]\nid = \"globex\"\nstaff = []\n");
    let db = dir.path().join("data/frontdesk.db");
    seed_for_purge(&db);
    let c = cfg.to_str().unwrap();
    let o = frontdesk(&["purge", "--config", c, "--before", "2026-1-31"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("YYYY-MM-DD"), "{}", stderr(&o));
    let purge = |extra: &[&str]| {
        let mut args = vec!["purge", "--config", c, "--before", "2026-02-01"];
        args.extend_from_slice(extra);
        let o = frontdesk(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = purge(&["--dry-run"]);
    assert!(
        out.contains("would delete 2 session(s) and 4 message(s)"),
        "{out}"
    );
    assert_eq!(session_ids(c), vec![1, 2, 3, 4, 5]);
    // While frontdesk runs (its lock held, its connection open) too.
    let _lock = InstanceLock::acquire(&db).unwrap();
    let _live = Store::open(&db).unwrap();
    let out = purge(&["--site", "globex"]);
    assert!(
        out.contains("deleted 1 session(s) and 1 message(s) of site \"globex\""),
        "{out}"
    );
    let out = purge(&[]);
    assert!(
        out.contains("deleted 1 session(s) and 3 message(s)"),
        "{out}"
    );
    // The open one, the recent one and the newest of all stay.
    assert_eq!(session_ids(c), vec![2, 3, 5]);
    let o = frontdesk(&["transcript", "2", "--config", c]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("line 1"));
}

#[test]
fn run_with_retain_days_purges_old_closed_sessions_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "\n[[sites]]\nid = \"globex\"\nstaff = []\n");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "path = \"data/frontdesk.db\"",
        "path = \"data/frontdesk.db\"\nretain_days = 200",
    );
    std::fs::write(&cfg, text).unwrap();
    seed_for_purge(&dir.path().join("data/frontdesk.db"));
    // Closed more than 200 days before now (December 2026 or later): 1, 3 and 4; 5 is the
    // newest and 2 is open.
    let now = Timestamp::now().to_rfc3339();
    assert!(
        now.as_str() > "2026-09-17",
        "the seeded dates assume a later clock: {now}"
    );
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "frontdesk=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let purged = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("retention") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let line = purged.unwrap_or_else(|| panic!("no retention line within 10 s: {seen:?}"));
    assert!(
        line.contains("sessions=3") && line.contains("messages=4"),
        "{line}"
    );
    assert_eq!(session_ids(cfg.to_str().unwrap()), vec![2, 5]);
}

#[test]
fn run_refuses_a_database_from_a_newer_frontdesk() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let db = dir.path().join("data/frontdesk.db");
    Store::open(&db)
        .unwrap()
        .conn()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let o = frontdesk(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("schema version 99") && stderr(&o).contains("upgrade frontdesk"),
        "{}",
        stderr(&o)
    );
}

/// Chats with known times, for `stats` and `sessions --missed` (figures worked out by hand
/// in `stats_figures_are_exact`).
fn seed_chats(db: &Path) {
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let day = |d: &str, hms: &str| format!("2026-11-{d}T{hms}Z");
    // ((id, site, day, created, closed), lines: (role, who, hh:mm:ss))
    type Line = (Role, &'static str, &'static str);
    type Chat = (
        i64,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    );
    #[rustfmt::skip]
    let chats: Vec<(Chat, Vec<Line>)> = vec![
        ((1, "acme", "22", "10:00:00", Some("10:10:00")), vec![
            (Role::Visitor, "v", "10:00:10"),
            (Role::Staff, "alice@example.com/desk", "10:00:40"),
            (Role::Staff, "bob@example.com/laptop", "10:01:00"),
        ]),
        ((2, "acme", "22", "11:00:00", Some("11:20:00")), vec![
            (Role::Visitor, "v", "11:00:05"),
            (Role::Staff, "bob@example.com/laptop", "11:02:05"),
        ]),
        ((3, "acme", "22", "12:00:00", Some("12:05:00")), vec![
            (Role::Visitor, "v", "12:00:01"),
            (Role::System, "chat.localhost", "12:00:02"),
            (Role::Note, "alice@example.com/desk", "12:10:00"),
        ]),
        ((4, "acme", "22", "12:30:00", Some("12:31:00")), vec![]),
        ((5, "acme", "23", "09:00:00", None), vec![(Role::Visitor, "v", "09:00:02")]),
        ((6, "acme", "23", "10:00:00", Some("10:30:00")), vec![
            (Role::Staff, "alice@example.com/desk", "10:00:01"),
            (Role::Visitor, "v", "10:00:03"),
            (Role::Staff, "alice@example.com/desk", "10:00:13"),
        ]),
        ((7, "globex", "22", "13:00:00", Some("13:05:00")), vec![
            (Role::Visitor, "v", "13:00:01"),
            (Role::Staff, "carol@example.com/pc", "13:00:21"),
        ]),
        ((8, "acme", "23", "11:00:00", Some("11:01:00")), vec![
            (Role::Staff, "alice@example.com/desk", "11:00:01"),
            (Role::Visitor, "v", "11:00:05"),
        ]),
    ];
    let mut ops = Vec::new();
    for ((id, site, d, created, closed), lines) in chats {
        let closed_at = closed.map(|c| at(&day(d, c)));
        ops.push(StoreOp::OpenSession(SessionRecord {
            id,
            room: BareJid::new(&format!("v{id}_{site}@chat.localhost")).unwrap(),
            site: SiteId::new(site).unwrap(),
            visitor: format!("v{id}"),
            state: if closed.is_some() {
                SessionState::Closed
            } else {
                SessionState::Active
            },
            staff: None,
            visitor_jid: Some(FullJid::new("x@anon.localhost/r").unwrap()),
            created_at: at(&day(d, created)),
            updated_at: closed_at.unwrap_or(at(&day(d, created))),
            closed_at,
        }));
        for (n, (role, who, hms)) in lines.into_iter().enumerate() {
            let from = if who == "v" {
                "x@anon.localhost/r"
            } else {
                who
            };
            ops.push(StoreOp::AppendMessage(MessageRecord {
                session_id: id,
                at: at(&day(d, hms)),
                role,
                from_jid: Jid::new(from).unwrap(),
                nick: "n".into(),
                body: format!("line {n} of #{id}"),
                stanza_id: format!("{id}-{n}"),
                origin_id: None,
            }));
        }
    }
    ops.push(StoreOp::TagsAdded {
        session_id: 3,
        tags: vec!["callback".into(), "vip".into()],
        by: BareJid::new("alice@example.com").unwrap(),
        at: at("2026-11-22T12:11:00Z"),
    });
    Store::open(db).unwrap().apply(&ops).unwrap();
}

fn stats_json(c: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["stats", "--config", c, "--json"];
    args.extend_from_slice(extra);
    let o = frontdesk(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every figure, worked out by hand from `seed_chats`: chats are sessions where the visitor
/// wrote (not #4); answered once a staff line follows the visitor's first (not #8, whose staff
/// line came first; a note is not a reply, #3); missed if closed unanswered (#3, #8); #5 is
/// open and unanswered. Percentiles are nearest-rank.
#[test]
fn stats_figures_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    seed_chats(&dir.path().join("data/frontdesk.db"));
    let c = cfg.to_str().unwrap();
    let staff = |jid: &str, chats: u64, replies: u64, p50: i64| serde_json::json!({"staff": jid, "chats": chats, "first_replies": replies, "first_reply_ms_p50": p50});
    let day = |d: &str, chats: u64, answered: u64, missed: u64| serde_json::json!({"day": d, "chats": chats, "answered": answered, "missed": missed});
    assert_eq!(
        stats_json(c, &[]),
        serde_json::json!({
            "site": null, "since": null,
            "chats": 7, "answered": 4, "missed": 2,
            // replies 10 s (#6), 20 s (#7), 30 s (#1), 120 s (#2)
            "first_reply_ms": {"p50": 20_000, "p90": 120_000},
            // closed chats: 60 s, 300 s, 300 s, 600 s, 1200 s, 1800 s
            "duration_ms": {"p50": 300_000},
            "staff": [
                staff("alice@example.com", 3, 2, 10_000),
                staff("bob@example.com", 2, 1, 120_000),
                staff("carol@example.com", 1, 1, 20_000),
            ],
            "days": [day("2026-11-22", 4, 3, 1), day("2026-11-23", 3, 1, 1)],
        })
    );
    assert_eq!(
        stats_json(c, &["--site", "acme"]),
        serde_json::json!({
            "site": "acme", "since": null,
            "chats": 6, "answered": 3, "missed": 2,
            "first_reply_ms": {"p50": 30_000, "p90": 120_000},
            "duration_ms": {"p50": 600_000},
            "staff": [
                staff("alice@example.com", 3, 2, 10_000),
                staff("bob@example.com", 2, 1, 120_000),
            ],
            "days": [day("2026-11-22", 3, 2, 1), day("2026-11-23", 3, 1, 1)],
        })
    );
    assert_eq!(
        stats_json(c, &["--since", "2026-11-23"]),
        serde_json::json!({
            "site": null, "since": "2026-11-23",
            "chats": 3, "answered": 1, "missed": 1,
            "first_reply_ms": {"p50": 10_000, "p90": 10_000},
            "duration_ms": {"p50": 60_000},
            "staff": [staff("alice@example.com", 2, 1, 10_000)],
            "days": [day("2026-11-23", 3, 1, 1)],
        })
    );
    // docs/storage.md's p50 in SQL alone gives the same figure.
    let doc = include_str!("../docs/storage.md");
    let example = doc
        .split("the p50 of the first reply times, in SQL alone:")
        .nth(1)
        .unwrap();
    let example = example
        .split("```sql\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let sql = example.replace("/* the first query */", frontdesk::store::stats::CHATS_SQL);
    let store = Store::open_read_only(&dir.path().join("data/frontdesk.db")).unwrap();
    let p50: i64 = store
        .conn()
        .query_row(&sql, rusqlite::params![None::<String>, ""], |r| r.get(0))
        .unwrap();
    assert_eq!(p50, 20_000);

    let none = stats_json(c, &["--site", "nowhere"]);
    assert_eq!(none["chats"], 0);
    assert_eq!(none["first_reply_ms"]["p50"], serde_json::Value::Null);

    let o = frontdesk(&["stats", "--config", c, "--site", "acme"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let expected = "Chats on site acme, ever (days are UTC days):
chats 6, answered 3, missed 2, open and unanswered 1
first staff reply: p50 30 s, p90 2 min 0 s (3 answered)
chat duration: p50 10 min 0 s (5 closed)
";
    assert!(text.starts_with(expected), "{text}");
    assert!(
        text.contains(
            "\nalice@example.com                     3              2             10 s\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\n2026-11-23      3         1       1\n"),
        "{text}"
    );

    for bad in ["2026-13-01", "22.11.2026", "2026-11-1", "yesterday"] {
        let o = frontdesk(&["stats", "--config", c, "--since", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains("YYYY-MM-DD"), "{}", stderr(&o));
    }
}

#[test]
fn sessions_mark_missed_chats_and_show_tags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    seed_chats(&dir.path().join("data/frontdesk.db"));
    let c = cfg.to_str().unwrap();
    let o = frontdesk(&["sessions", "--config", c, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let missed: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["missed"] == true)
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(missed, [3, 8]);
    assert_eq!(v[2]["tags"], serde_json::json!(["callback", "vip"]));
    assert_eq!(v[0]["tags"], serde_json::json!([]));
    assert_eq!(v[0]["missed"], false);

    let o = frontdesk(&["sessions", "--config", c, "--missed"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with("    3  CLOSED    missed  acme"),
        "{text}"
    );
    assert!(rows[0].contains("callback,vip"), "{text}");
    assert!(rows[1].starts_with("    8  CLOSED    missed"), "{text}");

    // The note shows in the transcript (text and JSON), and the tags in its header.
    let o = frontdesk(&["transcript", "3", "--config", c]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("CLOSED, tags: callback, vip"),
        "{text}"
    );
    assert!(text.contains("n (note): line 2 of #3"), "{text}");
    let o = frontdesk(&["transcript", "3", "--config", c, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[2]["role"], "note");
}
