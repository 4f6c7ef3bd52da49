//! Scenario tests of a site's pre-chat form (`prechat`): the fields advertised in the room's
//! disco#info, the answers the widget sends with the join (kept only for asked fields,
//! cleaned, bounded, an email or phone only if it looks like one) as staff see them, and the
//! closed-hours notice, which asks for an email address only when none was given.

use super::details::prechat_answer;
use super::tests::*;
use crate::config::{PrechatField, PrechatKind};

/// `["name", "email?"]` as the config gives it.
pub(super) fn fields(spec: &[&str]) -> Vec<PrechatField> {
    spec.iter()
        .map(|s| PrechatField {
            kind: PrechatKind::parse(s.trim_end_matches('?')).unwrap(),
            required: !s.ends_with('?'),
        })
        .collect()
}

fn asking(spec: &[&str]) -> Scenario {
    let mut c = config();
    for site in c.sites.values_mut() {
        site.desk.prechat = fields(spec);
    }
    let mut s = Scenario::with_config(c);
    s.sends(&format!("<presence from='{ALICE}' to='{COMPONENT}'/>"));
    s.staff_inbox.clear();
    s
}

fn join_answering(s: &mut Scenario, from: &str, answers: &str) {
    s.sends(&format!("<presence from='{from}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/><visitor xmlns='urn:frontdesk:visitor:0'>{answers}</visitor></presence>"));
    s.drain();
}

/// Every set of details written, as (key, value) pairs.
fn details_written(s: &Scenario) -> Vec<Vec<(String, String)>> {
    s.stored
        .iter()
        .filter_map(|op| match op {
            crate::store::StoreOp::SessionDetails { details, .. } => Some(
                details
                    .iter()
                    .map(|d| (d.key.clone(), d.value.clone()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_rooms_disco_info_lists_the_fields_in_order_and_which_are_required() {
    let mut s = asking(&["question", "name", "email?"]);
    s.sends(&format!("<iq type='get' from='{V1}' to='{ROOM}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    s.receives(&format!(
        "<iq type='result' from='{ROOM}' to='{V1}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'>
        <x xmlns='jabber:x:data' type='result'>
        <field var='FORM_TYPE' type='hidden'><value>urn:frontdesk:widget:0</value></field>
        <field var='staff-available' type='boolean'><value>true</value></field>
        <field var='prechat' type='list-multi'><value>question</value><value>name</value><value>email</value></field>
        <field var='prechat-required' type='list-multi'><value>question</value><value>name</value></field>
        </x></query></iq>"
    ));
    // A site that asks nothing says nothing about it (the widget shows no form).
    s.core
        .config
        .sites
        .values_mut()
        .for_each(|site| site.desk.prechat.clear());
    s.sends(&format!("<iq type='get' from='{V1}' to='{ROOM}' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    let answer = show(&s.drain()[0]);
    assert!(!answer.contains("prechat"), "{answer}");
}

#[test]
fn the_answers_reach_the_offer_and_info() {
    let mut s = asking(&["name", "email?", "question?"]);
    join_answering(
        &mut s,
        V1,
        "<field var='name'>Ann Smith</field><field var='email'>ann@example.com</field>",
    );
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Hi</body></message>"
    ));
    assert_eq!(
        s.desk_told("alice_acme@example.com"),
        ["Visitor Ann on ACME Inc. wants to chat (#1). Reply to them, or send !accept 1.\nname: Ann Smith · email: ann@example.com (!info 1 for more)"]
    );
    s.sends(&format!(
        "<message from='{ALICE}' to='{COMPONENT}' type='chat'><body>!info 1</body></message>"
    ));
    assert_eq!(
        s.desk_told("alice_acme@example.com"),
        ["#1 Ann on ACME Inc. — ACTIVE\nasked: name: Ann Smith (from the widget)\nasked: email: ann@example.com (from the widget)"]
    );
}

#[test]
fn hostile_answers_are_dropped_cleaned_or_cut_and_nothing_else_is_stored() {
    let mut s = asking(&["name", "email", "phone?", "company?", "question?"]);
    let long = "q".repeat(5_000);
    join_answering(
        &mut s,
        V1,
        &format!(
            "<field var='password'>hunter2</field>\
             <field var='name'>Ann&#x202E;&#10;carol_beta (staff): refund approved&#x200B;</field>\
             <field var='name'>Second Name</field>\
             <field var='email'>not an email</field>\
             <field var='phone'>+47 (22) 33-44&#x2066;</field>\
             <field var='company'>&#x9B;31mRed&#x7F;</field>\
             <field var='question'>{long}</field>\
             <field var='NAME'>Upper</field>"
        ),
    );
    let written = details_written(&s);
    assert_eq!(written.len(), 1, "{written:?}");
    let question = format!("prechat.question={}", "q".repeat(500));
    let got: Vec<String> = written[0].iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        got,
        [
            "prechat.name=Ann carol_beta (staff): refund approved",
            "prechat.phone=+47 (22) 33-44",
            "prechat.company=31mRed",
            question.as_str(),
        ],
        "an unasked field, a second answer, a bad email and another case are not kept; \
         direction, zero-width and control characters are gone, line breaks are spaces"
    );
    s.sends(&format!(
        "<message from='{ALICE}' to='{COMPONENT}' type='chat'><body>!info 1</body></message>"
    ));
    let info = s.desk_told("alice_acme@example.com").join("\n");
    assert!(crate::render::is_rendered(&info, true), "{info:?}");
    assert!(
        !info.contains("hunter2") && !info.contains("not an email"),
        "{info}"
    );
    assert!(!info.contains("\ncarol_beta"), "a forged line: {info}");
}

#[test]
fn a_site_that_asks_nothing_keeps_no_answers() {
    let mut s = asking(&[]);
    join_answering(
        &mut s,
        V1,
        "<page url='https://shop.example.com/'/><field var='name'>Ann</field>",
    );
    assert_eq!(
        details_written(&s),
        [pairs(&[("page", "https://shop.example.com/")])]
    );
}

#[test]
fn a_rejoin_without_the_answers_keeps_them_and_new_ones_replace_them() {
    let mut s = asking(&["name", "company?"]);
    join_answering(
        &mut s,
        V1,
        "<field var='name'>Ann</field><field var='company'>ACME</field>",
    );
    // The page reloads and joins with only the page context this time, then answers again.
    let leave = format!("<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>");
    s.sends(&leave);
    join_answering(&mut s, V1, "<page url='https://shop.example.com/b'/>");
    s.sends(&leave);
    join_answering(&mut s, V1, "<field var='name'>Ann Smith</field>");
    assert_eq!(
        details_written(&s),
        [
            pairs(&[("prechat.name", "Ann"), ("prechat.company", "ACME")]),
            pairs(&[
                ("page", "https://shop.example.com/b"),
                ("prechat.name", "Ann"),
                ("prechat.company", "ACME"),
            ]),
            pairs(&[("prechat.name", "Ann Smith"), ("prechat.company", "ACME")]),
        ]
    );
}

fn closed_notice(spec: &[&str], answers: &str) -> String {
    // The scenario's clock: Sunday 2026-11-22 10:00 UTC; the desk opens on weekdays.
    let mut s = asking(spec);
    let hours = crate::config::hours::OpeningHours {
        tz: "UTC".parse().unwrap(),
        openings: crate::config::hours::parse_entry("mon-fri 09:00-17:00").unwrap(),
    };
    for site in s.core.config.sites.values_mut() {
        site.desk.hours = Some(hours.clone());
    }
    join_answering(&mut s, V1, answers);
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Hello?</body></message>"
    ));
    let notices: Vec<String> = s
        .drain()
        .into_iter()
        .filter(|e| e.name() == "message" && e.attr("from") == Some(ROOM))
        .filter_map(|e| {
            e.get_child("body", "jabber:component:accept")
                .map(|b| b.text())
        })
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    notices[0].clone()
}

#[test]
fn closed_hours_ask_for_an_email_only_when_the_visitor_gave_none() {
    const ASK: &str = "We are closed right now and open again tomorrow at 09:00 (UTC time). Leave your email address here and we will write back; if someone is around, they may answer sooner.";
    const HAVE: &str = "We are closed right now and open again tomorrow at 09:00 (UTC time). We will write back to the email address you gave; if someone is around, they may answer sooner.";
    // No email field: asked in the chat.
    assert_eq!(
        closed_notice(&["name"], "<field var='name'>Ann</field>"),
        ASK
    );
    // An email field, answered: not asked again.
    assert_eq!(
        closed_notice(
            &["name", "email"],
            "<field var='name'>Ann</field><field var='email'>ann@example.com</field>"
        ),
        HAVE
    );
    // An optional email field left empty, or an answer that is no email: asked.
    assert_eq!(closed_notice(&["email?"], ""), ASK);
    assert_eq!(
        closed_notice(&["email?"], "<field var='email'>ann at example</field>"),
        ASK
    );
    // An email sent for a site that does not ask for one is not kept: asked.
    assert_eq!(
        closed_notice(&["name"], "<field var='email'>ann@example.com</field>"),
        ASK
    );
}

#[test]
fn email_and_phone_answers_are_checked_loosely() {
    let email = |s: &str| prechat_answer(PrechatKind::Email, s);
    for good in [
        "ann@example.com",
        " ann+chat@mail.example.org ",
        "a@localhost",
    ] {
        assert_eq!(email(good).as_deref(), Some(good.trim()), "{good}");
    }
    for bad in [
        "",
        "ann",
        "@example.com",
        "ann@",
        "ann@@example.com",
        "ann@ex ample.com",
        "ann@.com",
        "<ann@example.com>",
        "ann@example.com, bob@example.com",
    ] {
        assert_eq!(email(bad), None, "{bad}");
    }
    let phone = |s: &str| prechat_answer(PrechatKind::Phone, s);
    assert_eq!(
        phone("+1 (555) 010-9999").as_deref(),
        Some("+1 (555) 010-9999")
    );
    for bad in ["12", "call me", "555-CALL-NOW", "+47 22 33 44 55 ext. 6"] {
        assert_eq!(phone(bad), None, "{bad}");
    }
    let long = "x".repeat(1_000);
    assert_eq!(
        prechat_answer(PrechatKind::Name, &long).map(|n| n.chars().count()),
        Some(100)
    );
    assert_eq!(
        prechat_answer(PrechatKind::Name, "\u{200B}\u{202E} \n"),
        None
    );
}

#[test]
fn a_reload_changes_the_fields_asked_and_kept_from_then_on() {
    let mut s = asking(&["name"]);
    let disco = |s: &mut Scenario, id: &str| {
        s.sends(&format!("<iq type='get' from='{V1}' to='{ROOM}' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
        show(&s.drain()[0])
    };
    assert!(!disco(&mut s, "d1").contains("<value>phone</value>"));
    let mut c = s.core.config.clone();
    for site in c.sites.values_mut() {
        site.desk.prechat = fields(&["phone"]);
    }
    s.feed(super::Input::Reconfigure(Box::new(c)));
    let after = disco(&mut s, "d2");
    assert!(
        after.contains("<value>phone</value>") && !after.contains("<value>name</value>"),
        "{after}"
    );
    join_answering(
        &mut s,
        V1,
        "<field var='name'>Ann</field><field var='phone'>555 0100</field>",
    );
    assert_eq!(
        details_written(&s),
        [pairs(&[("prechat.phone", "555 0100")])]
    );
}
