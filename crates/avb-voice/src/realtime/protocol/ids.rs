//! Prefixed realtime ids (`event_…`, `item_…`, `resp_…`, …) drawn from the [`IdGen`] port (reference §11 item 7).

use avb_core::IdGen;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base62 digits needed for any `u128` (62^22 > 2^128).
const DIGITS: usize = 22;

/// The kinds of ids the server mints, each with the prefix OpenAI uses and applications match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// `event_…`: the `event_id` of every server event.
    Event,
    /// `item_…`: conversation items.
    Item,
    /// `resp_…`: responses.
    Response,
    /// `call_…`: function-call ids (`call_id`).
    Call,
    /// `sess_…`: sessions.
    Session,
    /// `conv_…`: conversations.
    Conversation,
}

impl IdKind {
    /// The prefix, underscore included.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Event => "event_",
            Self::Item => "item_",
            Self::Response => "resp_",
            Self::Call => "call_",
            Self::Session => "sess_",
            Self::Conversation => "conv_",
        }
    }

    /// A new id: the prefix followed by 22 base62 characters of a fresh UUID from `ids` (so [`SequentialIds`]
    /// gives reproducible ids in tests).
    ///
    /// [`SequentialIds`]: avb_core::SequentialIds
    pub fn generate(self, ids: &dyn IdGen) -> String {
        let mut n = ids.new_uuid().as_u128();
        let mut digits = [b'0'; DIGITS];
        for slot in digits.iter_mut().rev() {
            // `n % 62` is below 62, so the lookup cannot miss; `get` keeps the lint happy.
            *slot = BASE62.get((n % 62) as usize).copied().unwrap_or(b'0');
            n /= 62;
        }
        let mut id = String::with_capacity(self.prefix().len() + DIGITS);
        id.push_str(self.prefix());
        id.extend(digits.iter().map(|&b| char::from(b)));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{SequentialIds, UuidV7Ids};
    use std::collections::HashSet;

    #[test]
    fn ids_carry_their_prefix_and_a_fixed_width_alphanumeric_tail() {
        let ids = UuidV7Ids;
        for kind in [
            IdKind::Event,
            IdKind::Item,
            IdKind::Response,
            IdKind::Call,
            IdKind::Session,
            IdKind::Conversation,
        ] {
            let id = kind.generate(&ids);
            let tail = id.strip_prefix(kind.prefix()).unwrap();
            assert_eq!(tail.len(), DIGITS);
            assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn sequential_ids_are_distinct_and_reproducible() {
        let a: Vec<_> = (0..100)
            .map({
                let ids = SequentialIds::default();
                move |_| IdKind::Event.generate(&ids)
            })
            .collect();
        let b: Vec<_> = (0..100)
            .map({
                let ids = SequentialIds::default();
                move |_| IdKind::Event.generate(&ids)
            })
            .collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 100);
    }
}
