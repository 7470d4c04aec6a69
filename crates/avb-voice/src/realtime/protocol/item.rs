//! Conversation items (reference §6): messages with content parts, function calls and their outputs.

/// Who a message is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The caller.
    User,
    /// The agent.
    Assistant,
    /// Instructions injected into the conversation.
    System,
}

impl Role {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::System => "system",
        }
    }
}

/// Item lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ItemStatus {
    /// Finished.
    #[default]
    Completed,
    /// Cut short (cancelled response, truncation).
    Incomplete,
    /// Being produced.
    InProgress,
}

impl ItemStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::InProgress => "in_progress",
        }
    }
}

/// GA image detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(missing_docs)]
pub enum ImageDetail {
    #[default]
    Auto,
    Low,
    High,
}

impl ImageDetail {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Low => "low",
            Self::High => "high",
        }
    }
}

/// Audio held by a content part, in the session's input or output format.
///
/// Kept as raw bytes and shared: a committed turn is base64-encoded only when someone asks for it
/// (`conversation.item.retrieve`), not on every commit (that encoding was 2–3 % of the server's CPU with a
/// thousand streaming sessions, and base64 text is a third larger than the audio it carries), and cloning an
/// item does not copy its audio. Backed by [`bytes::Bytes`], so taking over a `Vec<u8>` (a synthesized chunk,
/// a committed turn) and keeping a prefix of it (server-side truncation) copy nothing.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AudioBytes(bytes::Bytes);

impl AudioBytes {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `len` bytes (all of them when `len` is longer), sharing the same buffer.
    #[must_use]
    pub fn prefix(&self, len: usize) -> Self {
        Self(self.0.slice(..len.min(self.0.len())))
    }

    /// The bytes as standard, padded base64 (the wire form).
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    /// Appends the bytes as standard, padded base64 to `out` (no intermediate string).
    pub fn append_base64(&self, out: &mut String) {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode_string(&self.0, out);
    }

    /// The concatenation of `parts` (one copy; none for a single part).
    pub fn concat(parts: &[AudioBytes]) -> Self {
        match parts {
            [] => Self::default(),
            [one] => one.clone(),
            _ => {
                let total = parts.iter().map(AudioBytes::len).sum();
                let mut joined = Vec::with_capacity(total);
                for part in parts {
                    joined.extend_from_slice(part.as_bytes());
                }
                Self::from(joined)
            }
        }
    }
}

impl From<Vec<u8>> for AudioBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }
}

impl From<&[u8]> for AudioBytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes::Bytes::copy_from_slice(bytes))
    }
}

impl std::fmt::Debug for AudioBytes {
    // Seconds of audio would flood a log line; the length says what matters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AudioBytes({} bytes)", self.0.len())
    }
}

/// One content part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentPart {
    /// User or system text (`input_text`).
    InputText {
        /// The text.
        text: String,
    },
    /// User audio (`input_audio`).
    InputAudio {
        /// Audio in the session's input format; `None` once omitted.
        audio: Option<AudioBytes>,
        /// The transcript, once known.
        transcript: Option<String>,
    },
    /// GA user image (`input_image`).
    InputImage {
        /// Data URL.
        image_url: String,
        /// Detail level.
        detail: ImageDetail,
    },
    /// Assistant text (beta `text`, GA `output_text`).
    Text {
        /// The text.
        text: String,
    },
    /// Assistant audio (beta `audio`, GA `output_audio`).
    Audio {
        /// Audio in the output format; `None` once omitted (item `done` events, retrieval without audio).
        audio: Option<AudioBytes>,
        /// The transcript of what was (or, after truncation, was heard to be) said.
        transcript: Option<String>,
    },
    /// Beta: a reference to another item (`item_reference`).
    ItemReference {
        /// The referenced item's id.
        id: String,
    },
}

impl ContentPart {
    /// The same part without audio bytes.
    #[must_use]
    pub fn without_audio(&self) -> Self {
        match self {
            Self::InputAudio { transcript, .. } => Self::InputAudio {
                audio: None,
                transcript: transcript.clone(),
            },
            Self::Audio { transcript, .. } => Self::Audio {
                audio: None,
                transcript: transcript.clone(),
            },
            other => other.clone(),
        }
    }
}

/// What an item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A message.
    Message {
        /// Who says it.
        role: Role,
        /// Content parts.
        content: Vec<ContentPart>,
    },
    /// A function call by the model.
    FunctionCall {
        /// `call_id`, which the matching output names (optional on client-created items).
        call_id: Option<String>,
        /// Function name.
        name: String,
        /// Arguments as a JSON string.
        arguments: String,
    },
    /// The client's result of a function call.
    FunctionCallOutput {
        /// The call it answers.
        call_id: String,
        /// The result (free text, often JSON).
        output: String,
    },
}

/// A conversation item as the server holds and reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `item_…` (or the client's own id).
    pub id: String,
    /// Lifecycle.
    pub status: ItemStatus,
    /// Content.
    pub kind: ItemKind,
}

impl Item {
    /// A completed message.
    pub fn message(id: impl Into<String>, role: Role, content: Vec<ContentPart>) -> Self {
        Self {
            id: id.into(),
            status: ItemStatus::Completed,
            kind: ItemKind::Message { role, content },
        }
    }

    /// The same item with every audio payload dropped (for `conversation.item.done`, `response.done`).
    #[must_use]
    pub fn without_audio(&self) -> Self {
        match &self.kind {
            ItemKind::Message { role, content } => Self {
                id: self.id.clone(),
                status: self.status,
                kind: ItemKind::Message {
                    role: *role,
                    content: content.iter().map(ContentPart::without_audio).collect(),
                },
            },
            _ => self.clone(),
        }
    }
}

/// An item sent by the client (`conversation.item.create`, `response.create.input`): the id and status are
/// optional until the server stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInput {
    /// The client's id, if it chose one.
    pub id: Option<String>,
    /// The client's status, if it gave one.
    pub status: Option<ItemStatus>,
    /// Content.
    pub kind: ItemKind,
}

impl ItemInput {
    /// The stored item: keeps the client's id or takes `new_id()`, status defaults to completed.
    pub fn into_item(self, new_id: impl FnOnce() -> String) -> Item {
        Item {
            id: self.id.unwrap_or_else(new_id),
            status: self.status.unwrap_or_default(),
            kind: self.kind,
        }
    }
}

impl From<Item> for ItemInput {
    fn from(item: Item) -> Self {
        Self {
            id: Some(item.id),
            status: Some(item.status),
            kind: item.kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_concat_and_prefix_keep_the_bytes() {
        let parts: Vec<AudioBytes> = [&[1u8, 2][..], &[], &[3, 4, 5]]
            .into_iter()
            .map(AudioBytes::from)
            .collect();
        assert_eq!(AudioBytes::concat(&parts).as_bytes(), &[1, 2, 3, 4, 5]);
        assert_eq!(AudioBytes::concat(&parts[2..]).as_bytes(), &[3, 4, 5]);
        assert!(AudioBytes::concat(&[]).is_empty());
        let whole = AudioBytes::from(vec![9u8, 8, 7]);
        assert_eq!(whole.prefix(2).as_bytes(), &[9, 8]);
        assert_eq!(whole.prefix(10).as_bytes(), &[9, 8, 7]);
        assert!(whole.prefix(0).is_empty());
        let mut text = String::from("x");
        whole.append_base64(&mut text);
        assert_eq!(text, format!("x{}", whole.to_base64()));
    }

    #[test]
    fn without_audio_keeps_transcripts() {
        let item = Item::message(
            "item_1",
            Role::Assistant,
            vec![ContentPart::Audio {
                audio: Some(AudioBytes::from(vec![0u8, 0, 0])),
                transcript: Some("hi".into()),
            }],
        );
        let stripped = item.without_audio();
        assert_eq!(
            stripped.kind,
            ItemKind::Message {
                role: Role::Assistant,
                content: vec![ContentPart::Audio {
                    audio: None,
                    transcript: Some("hi".into())
                }],
            }
        );
    }

    #[test]
    fn input_keeps_client_id_or_takes_a_new_one() {
        let kind = ItemKind::FunctionCallOutput {
            call_id: "c".into(),
            output: "{}".into(),
        };
        let own = ItemInput {
            id: Some("mine".into()),
            status: None,
            kind: kind.clone(),
        };
        assert_eq!(own.into_item(|| "item_x".into()).id, "mine");
        let fresh = ItemInput {
            id: None,
            status: None,
            kind,
        }
        .into_item(|| "item_x".into());
        assert_eq!(
            (fresh.id.as_str(), fresh.status),
            ("item_x", ItemStatus::Completed)
        );
    }
}
