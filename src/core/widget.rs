//! What frontdesk tells its web widget beyond XEP-0045, in the namespace [`NS_WIDGET`]
//! (documented in docs/web-integration.md): a staff member's avatar in their occupant
//! presence, whether the site's staff are available and what it asks before the chat (a form
//! in the room's disco#info), and the visitor's own "End chat" (an element in their
//! unavailable presence).

use minidom::Element;
use xmpp_parsers::presence::Presence;

use super::room::Occupant;
use super::session::Role;
use super::stanzas::attr;
use super::SiteInfo;
use crate::config::PrechatField;

pub const NS_WIDGET: &str = "urn:frontdesk:widget:0";
const NS_DATA: &str = "jabber:x:data";

/// `<profile xmlns=NS_WIDGET avatar="https://…"/>` for a staff occupant whose config entry has
/// an avatar (an http(s) URL, checked when the config is read). Nothing else about staff.
pub fn profile(site: &SiteInfo, o: &Occupant) -> Option<Element> {
    if o.role != Role::Staff {
        return None;
    }
    let avatar = site.profiles.get(&o.jid.to_bare())?.avatar.as_deref()?;
    Some(attr(Element::builder("profile", NS_WIDGET), "avatar", avatar).build())
}

/// Adds [`profile`] to `p`, an occupant presence of `o`.
pub fn with_profile(mut p: Presence, site: &SiteInfo, o: &Occupant) -> Presence {
    p.payloads.extend(profile(site, o));
    p
}

/// The XEP-0128 form in a room's disco#info: `staff-available` is true when any staff member
/// of the site is available now (never who, nor how many); when the site asks questions
/// before the chat, `prechat` lists its fields in order and `prechat-required` those the
/// widget must have answered.
pub fn room_form(available: bool, prechat: &[PrechatField]) -> Element {
    let field = |var: &str, type_: &str, values: &[&str]| {
        let b = attr(Element::builder("field", NS_DATA), "var", var);
        attr(b, "type", type_)
            .append_all(
                values
                    .iter()
                    .map(|v| Element::builder("value", NS_DATA).append(*v)),
            )
            .build()
    };
    let all: Vec<&str> = prechat.iter().map(|f| f.kind.as_str()).collect();
    let required: Vec<&str> = prechat
        .iter()
        .filter(|f| f.required)
        .map(|f| f.kind.as_str())
        .collect();
    let mut x = attr(Element::builder("x", NS_DATA), "type", "result")
        .append(field("FORM_TYPE", "hidden", &[NS_WIDGET]))
        .append(field(
            "staff-available",
            "boolean",
            &[if available { "true" } else { "false" }],
        ));
    if !all.is_empty() {
        x = x.append(field("prechat", "list-multi", &all)).append(field(
            "prechat-required",
            "list-multi",
            &required,
        ));
    }
    x.build()
}

/// The visitor pressed "End chat": their unavailable presence carries `<end-chat/>`.
pub fn ends_chat(p: &Presence) -> bool {
    p.payloads
        .iter()
        .any(|e| e.name() == "end-chat" && e.ns() == NS_WIDGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_form_says_true_or_false_and_nothing_else_without_prechat() {
        let f = room_form(true, &[]);
        let fields: Vec<_> = f.children().collect();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].attr("var"), Some("staff-available"));
        assert_eq!(
            fields[1].children().next().map(|v| v.text()),
            Some("true".into())
        );
        let f = room_form(false, &[]);
        assert_eq!(
            f.children()
                .nth(1)
                .and_then(|v| v.children().next())
                .map(|v| v.text()),
            Some("false".into())
        );
    }

    #[test]
    fn only_the_widget_namespace_ends_a_chat() {
        let mut p = Presence::unavailable();
        assert!(!ends_chat(&p));
        p.payloads
            .push(Element::builder("end-chat", "urn:other").build());
        assert!(!ends_chat(&p));
        p.payloads
            .push(Element::builder("end-chat", NS_WIDGET).build());
        assert!(ends_chat(&p));
    }
}
