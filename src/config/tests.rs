//! The config checker end to end: good files parse, and every problem is reported with its key.

use super::*;

const GOOD: &str = r#"
[component]
jid = "chat.example.com"
server = "127.0.0.1:5347"
secret = "s3cret"

[store]
path = "data/frontdesk.db"

[[sites]]
id = "acme"
name = "ACME Inc."
staff = ["alice_acme@example.com", "bob_acme@example.com"]

[[sites]]
id = "globex"
staff = []
"#;

fn problems(text: &str) -> Vec<Problem> {
    match Config::parse(text, Path::new("/etc/frontdesk/frontdesk.toml")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn keys(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.key).collect()
}

#[test]
fn good_config() {
    let c = Config::parse(GOOD, Path::new("/etc/frontdesk/frontdesk.toml")).unwrap();
    assert_eq!(c.component.jid.to_string(), "chat.example.com");
    assert_eq!(
        c.store.path,
        PathBuf::from("/etc/frontdesk/data/frontdesk.db")
    );
    assert_eq!(c.sites.len(), 2);
    assert_eq!(c.sites[0].staff.len(), 2);
    assert_eq!(c.sites[1].name, "globex");
    assert_eq!(c.secret(None).unwrap().expose(), "s3cret");
    assert_eq!(c.secret(Some("env".into())).unwrap().expose(), "env");
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn limits_section() {
    let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
    assert_eq!(c.limits, Limits::default());
    let c = Config::parse(
        &format!("{GOOD}\n[limits]\nstanza_bytes = 8192\nmessages_per_minute = 600\n"),
        Path::new("/f.toml"),
    )
    .unwrap();
    assert_eq!(
        (
            c.limits.stanza_bytes,
            c.limits.messages_per_minute,
            c.limits.depth
        ),
        (8192, 600, 32)
    );
    let k = keys(&format!(
        "{GOOD}\n[limits]\nstanza_bytes = 100\ndepth = 0\nbody_chars = \"many\"\nspeed = 1\n"
    ));
    for key in [
        "limits.stanza_bytes",
        "limits.depth",
        "limits.body_chars",
        "limits.speed",
    ] {
        assert!(k.contains(&key.to_string()), "{key} not in {k:?}");
    }
}

#[test]
fn roster_section_defaults_and_problems() {
    let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
    assert_eq!(c.roster, RosterConfig::default());
    let text = format!("{GOOD}\n[roster]\nmode = \"ejabberd-api\"\nejabberd_api = \"http://127.0.0.1:5280/api/\"\nremove_after_secs = 5\ncheck_staff_secs = 20\n");
    let c = Config::parse(&text, Path::new("/f.toml")).unwrap();
    assert_eq!(c.roster.mode, RosterMode::EjabberdApi);
    assert_eq!(c.roster.remove_after_secs, 5);
    assert_eq!(c.roster.check_staff_secs, 20);
    assert_eq!(c.roster.visitors, crate::config::RosterVisitors::Waiting);
    let w = Config::parse(
        &format!("{GOOD}\n[roster]\nvisitors = \"all\"\n"),
        Path::new("/f.toml"),
    )
    .unwrap();
    assert_eq!(w.roster.visitors, crate::config::RosterVisitors::All);
    let url = c.roster.ejabberd_api.unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("127.0.0.1", 5280, "/api")
    );
    let bad = format!("{GOOD}\n[roster]\nmode = \"sometimes\"\nejabberd_api = \"https://x/api\"\nremove_after_secs = -1\ncheck_staff_secs = 1\ncolour = 1\nvisitors = \"some\"\n");
    let k = keys(&bad);
    for key in [
        "roster.mode",
        "roster.ejabberd_api",
        "roster.remove_after_secs",
        "roster.check_staff_secs",
        "roster.colour",
        "roster.visitors",
    ] {
        assert!(k.contains(&key.to_string()), "{key} not in {k:?}");
    }
    let k = keys(&format!("{GOOD}\n[roster]\nmode = \"ejabberd-api\"\n"));
    assert_eq!(k, vec!["roster.ejabberd_api".to_string()]);
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = GOOD
        .replace(
            "server = \"127.0.0.1:5347\"",
            "server = \"nowhere\"\ncolour = \"blue\"",
        )
        .replace("id = \"acme\"", "id = \"ac_me\"")
        .replace("\"bob_acme@example.com\"", "\"bob_acme@example.com/phone\"");
    let k = keys(&text);
    assert!(k.contains(&"component.server".to_string()), "{k:?}");
    assert!(k.contains(&"component.colour".to_string()), "{k:?}");
    assert!(k.contains(&"sites[0].id".to_string()), "{k:?}");
    assert!(k.contains(&"sites[0].staff[1]".to_string()), "{k:?}");
}

#[test]
fn unknown_top_level_and_site_keys() {
    let text = format!("{GOOD}\n[logging]\nlevel = 1\n");
    assert_eq!(keys(&text), vec!["logging".to_string()]);
    let text = GOOD.replace("name = \"ACME Inc.\"", "name = \"ACME\"\nowner = \"x\"");
    assert_eq!(keys(&text), vec!["sites[0].owner".to_string()]);
}

#[test]
fn missing_pieces() {
    let k = keys("[component]\njid = \"a@b\"\n");
    assert!(k.contains(&"component.jid".to_string()));
    assert!(k.contains(&"component.server".to_string()));
    assert!(k.contains(&"store".to_string()));
    assert!(k.contains(&"sites".to_string()));
}

#[test]
fn duplicate_site_and_both_secrets() {
    let text = GOOD.replace("id = \"globex\"", "id = \"acme\"").replace(
        "secret = \"s3cret\"",
        "secret = \"x\"\nsecret_file = \"/nonexistent\"",
    );
    let k = keys(&text);
    assert!(k.contains(&"sites[1].id".to_string()), "{k:?}");
    assert!(k.contains(&"component.secret_file".to_string()), "{k:?}");
}

#[test]
fn secret_file_and_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
    let text = GOOD.replace("secret = \"s3cret\"", "secret_file = \"secret\"");
    let c = Config::parse(&text, &dir.path().join("frontdesk.toml")).unwrap();
    assert_eq!(c.secret(None).unwrap().expose(), "from-file");
    let none = GOOD.replace("secret = \"s3cret\"\n", "");
    let c = Config::parse(&none, Path::new("x.toml")).unwrap();
    assert!(matches!(c.secret(None), Err(ConfigError::NoSecret)));
    assert_eq!(c.secret(Some("e".into())).unwrap().expose(), "e");
}

#[test]
fn syntax_error_names_the_file() {
    let e = Config::parse("[component\n", Path::new("bad.toml")).unwrap_err();
    assert!(e.to_string().contains("bad.toml"));
}

#[test]
fn store_retain_days_is_off_by_default_and_checked() {
    let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
    assert_eq!(c.store.retain_days, None);
    let with = |v: &str| {
        GOOD.replace(
            "path = \"data/frontdesk.db\"",
            &format!("path = \"x.db\"\nretain_days = {v}"),
        )
    };
    let c = Config::parse(&with("90"), Path::new("/f.toml")).unwrap();
    assert_eq!(c.store.retain_days, Some(90));
    let c = Config::parse(&with("0"), Path::new("/f.toml")).unwrap();
    assert_eq!(c.store.retain_days, None);
    for bad in ["-1", "36501", "\"90\"", "1.5"] {
        assert_eq!(keys(&with(bad)), vec!["store.retain_days"], "{bad}");
    }
}

const DESK: &str = r#"
[component]
jid = "chat.example.com"
server = "127.0.0.1:5347"
secret = "s3cret"

[store]
path = "data/frontdesk.db"

[[sites]]
id = "acme"
name = "ACME Inc."
staff = [
  "alice_acme@example.com",
  { jid = "bob_acme@example.com", name = "Bob", avatar = "https://example.com/bob.png", max_chats = 5 },
]
max_chats_per_staff = 2
routing = "least-busy"
offer_timeout_secs = 30
[[sites.canned]]
key = "hello"
text = "Hi! I'm looking into it right now."
[[sites.canned]]
key = "bye-now"
text = "Thanks for writing!"
"#;

#[test]
fn staff_tables_routing_capacity_and_canned_replies() {
    let c = Config::parse(DESK, Path::new("/f.toml")).unwrap();
    let site = &c.sites[0];
    assert_eq!(site.staff.len(), 2);
    let bob = BareJid::new("bob_acme@example.com").unwrap();
    assert_eq!(
        site.profiles.get(&bob),
        Some(&StaffProfile {
            name: Some("Bob".into()),
            avatar: Some("https://example.com/bob.png".into()),
            max_chats: Some(5),
        })
    );
    assert_eq!(site.profiles.len(), 1, "a bare JID entry has no profile");
    assert_eq!(site.desk.max_chats_per_staff, 2);
    assert_eq!(site.desk.routing, Routing::LeastBusy);
    assert_eq!(site.desk.offer_timeout_secs, 30);
    let keys: Vec<&str> = site.desk.canned.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["hello", "bye-now"]);
    // Defaults.
    let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
    assert_eq!(c.sites[0].desk, DeskConfig::default());
    assert_eq!(c.sites[0].desk.max_chats_per_staff, 3);
    assert_eq!(c.sites[0].desk.routing, Routing::Broadcast);
}

#[test]
fn bad_desk_keys_are_named() {
    let bad = DESK
        .replace("max_chats = 5", "max_chats = 0, colour = 1")
        .replace("name = \"Bob\"", "name = \"Bob\u{202e}\"")
        .replace("https://example.com/bob.png", "javascript:alert(1)")
        .replace("max_chats_per_staff = 2", "max_chats_per_staff = -1")
        .replace("\"least-busy\"", "\"random\"")
        .replace("offer_timeout_secs = 30", "offer_timeout_secs = 1")
        .replace("key = \"bye-now\"", "key = \"hello\"")
        .replace("\"alice_acme@example.com\",", "\"alice_acme@example.com\", 42, { name = \"No JID\" }, { jid = \"alice_acme@example.com\" },");
    let k = keys(&bad);
    for key in [
        "sites[0].staff[1]",
        "sites[0].staff[2].jid",
        "sites[0].staff[3].jid",
        "sites[0].staff[4].max_chats",
        "sites[0].staff[4].colour",
        "sites[0].staff[4].name",
        "sites[0].staff[4].avatar",
        "sites[0].max_chats_per_staff",
        "sites[0].routing",
        "sites[0].offer_timeout_secs",
        "sites[0].canned[1].key",
    ] {
        assert!(k.contains(&key.to_string()), "{key} not in {k:?}");
    }
    let long = DESK.replace("Thanks for writing!", &"x".repeat(2_001));
    assert_eq!(keys(&long), ["sites[0].canned[1].text"]);
    let odd = DESK.replace("key = \"hello\"", "key = \"Hello World\"");
    assert_eq!(keys(&odd), ["sites[0].canned[0].key"]);
    // The admins list stays bare JIDs only.
    let admins = format!("admins = [{{ jid = \"x@example.com\" }}]\n{DESK}");
    assert_eq!(keys(&admins), ["admins[0]"]);
}

#[test]
fn the_example_config_parses_with_its_log_section() {
    let path = Path::new("/etc/frontdesk/frontdesk.toml");
    let c = Config::parse(include_str!("../../examples/frontdesk.toml"), path).unwrap();
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level.as_deref(), Some("info"));
    assert_eq!(
        c.secret_files,
        vec![(
            "component.secret_file".to_string(),
            PathBuf::from("/etc/frontdesk/secret")
        )]
    );
    let json =
        GOOD.to_string() + "\n[log]\nformat = \"json\"\nlevel = \"warn,frontdesk::shell=debug\"\n";
    let c = Config::parse(&json, path).unwrap();
    assert_eq!(c.log.format, LogFormat::Json);
    let bad = GOOD.to_string() + "\n[log]\nformat = \"yaml\"\nlevel = \"chatty\"\ncolour = 1\n";
    assert_eq!(keys(&bad), vec!["log.colour", "log.format", "log.level"]);
}

#[test]
fn opening_hours_need_a_time_zone_and_say_what_is_wrong() {
    let with = |extra: &str| {
        DESK.replace(
            "offer_timeout_secs = 30",
            &format!("offer_timeout_secs = 30\n{extra}"),
        )
    };
    let c = Config::parse(
        &with("hours = [\"mon-fri 09:00-17:00\", \"sat 10:00-13:00\"]\ntimezone = \"Europe/Oslo\""),
        Path::new("/f.toml"),
    )
    .unwrap();
    let h = c.sites[0].desk.hours.as_ref().unwrap();
    assert_eq!(h.tz.name(), "Europe/Oslo");
    assert_eq!(h.openings.len(), 6);
    assert_eq!(
        keys(&with("hours = [\"mon-fri 09:00-17:00\"]")),
        ["sites[0].timezone"]
    );
    assert_eq!(
        keys(&with("timezone = \"Europe/Oslo\"")),
        ["sites[0].timezone"]
    );
    assert_eq!(
        keys(&with(
            "hours = [\"mon-fri 9-5\", \"sun 22:00-02:00\", 7]\ntimezone = \"Mars/Olympus\""
        )),
        [
            "sites[0].hours[0]",
            "sites[0].hours[1]",
            "sites[0].hours[2]",
            "sites[0].timezone"
        ]
    );
    assert_eq!(
        keys(&with("hours = []\ntimezone = \"UTC\"")),
        ["sites[0].hours"]
    );
}

#[test]
fn metrics_listen() {
    let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
    assert_eq!(c.metrics.listen, None);
    let c = Config::parse(
        &format!("{GOOD}\n[metrics]\nlisten = \"127.0.0.1:9105\"\n"),
        Path::new("/f.toml"),
    )
    .unwrap();
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9105".parse().unwrap()));
    for bad in [
        "\"localhost:9105\"",
        "\"127.0.0.1\"",
        "\"127.0.0.1:0\"",
        "9105",
    ] {
        let text = format!("{GOOD}\n[metrics]\nlisten = {bad}\n");
        assert_eq!(keys(&text), vec!["metrics.listen"], "{bad}");
    }
    assert_eq!(
        keys(&format!("{GOOD}\n[metrics]\nport = 1\n")),
        vec!["metrics.port"]
    );
}

#[test]
fn prechat_fields_are_known_once_each_and_optional_with_a_question_mark() {
    let with = |extra: &str| {
        GOOD.replace(
            "staff = [\"alice_acme@example.com\", \"bob_acme@example.com\"]",
            &format!("staff = [\"alice_acme@example.com\"]\n{extra}"),
        )
    };
    let c = Config::parse(
        &with("prechat = [\"name\", \"email?\", \"question\"]"),
        Path::new("/f.toml"),
    )
    .unwrap();
    let got: Vec<(&str, bool)> = c.sites[0]
        .desk
        .prechat
        .iter()
        .map(|f| (f.kind.as_str(), f.required))
        .collect();
    assert_eq!(got, [("name", true), ("email", false), ("question", true)]);
    assert!(c.sites[0].desk.asks_email());
    assert!(c.sites[1].desk.prechat.is_empty() && !c.sites[1].desk.asks_email());
    let bad = problems(&with(
        "prechat = [\"name\", \"age\", \"name?\", 7, \"email??\", \"Phone\"]",
    ));
    let got: Vec<String> = bad.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        got,
        [
            "sites[0].prechat[1]: \"age\" is not a pre-chat field: use name, email, phone, company, question, each with a trailing '?' if it is optional",
            "sites[0].prechat[2]: \"name\" is listed twice",
            "sites[0].prechat[3]: must be a string such as \"email?\"",
            "sites[0].prechat[4]: \"email??\" is not a pre-chat field: use name, email, phone, company, question, each with a trailing '?' if it is optional",
            "sites[0].prechat[5]: \"Phone\" is not a pre-chat field: use name, email, phone, company, question, each with a trailing '?' if it is optional",
        ]
    );
    assert_eq!(keys(&with("prechat = \"name\"")), ["sites[0].prechat"]);
}
