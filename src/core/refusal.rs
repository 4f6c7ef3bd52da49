//! Why something was refused: the one error type every handler answers with. It becomes an
//! error stanza of the kind that was refused (presence, message or IQ), addressed back to the
//! sender about the address they wrote to.

use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Id;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::stanzas;

#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub type_: ErrorType,
    pub condition: DefinedCondition,
    /// Text the person can act on.
    pub text: String,
}

impl Refusal {
    pub fn new(type_: ErrorType, condition: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal {
            type_,
            condition,
            text: text.into(),
        }
    }

    pub fn cancel(condition: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Cancel, condition, text)
    }

    pub fn modify(condition: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Modify, condition, text)
    }

    pub fn auth(condition: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Auth, condition, text)
    }

    pub fn wait(condition: DefinedCondition, text: impl Into<String>) -> Refusal {
        Refusal::new(ErrorType::Wait, condition, text)
    }

    pub fn error(&self) -> StanzaError {
        stanzas::error(self.type_.clone(), self.condition.clone(), &self.text)
    }

    /// `about` refuses `to`'s presence.
    pub fn presence(&self, about: Jid, to: Jid, id: Option<String>) -> Presence {
        stanzas::presence_error(about, to, id, self.error())
    }

    /// `about` refuses `to`'s message.
    pub fn message(&self, about: Jid, to: Jid, id: Option<Id>) -> xmpp_parsers::message::Message {
        stanzas::message_error(about, to, id, self.error())
    }

    /// `about` refuses `to`'s IQ request.
    pub fn iq(&self, about: Jid, to: Jid, id: String) -> xmpp_parsers::iq::Iq {
        stanzas::iq_error(about, to, id, self.error())
    }
}
