//! [`TextFrame`]: the text of one client WebSocket frame, shared with the transport's read buffer.

use std::fmt;
use std::ops::Deref;

/// The text of one client frame (one JSON event), held in a shared buffer rather than a `String`.
///
/// Transports read frames into reference-counted buffers (tungstenite's `Utf8Bytes`, actix's `ByteString`);
/// handing that buffer over instead of copying it saves an allocation and a copy of every frame — at 50 audio
/// frames a second per streaming session, the transport's largest avoidable cost. The text is checked to be
/// UTF-8 when the frame is made; reading it checks again (the crate has no `unsafe`), which for the ASCII JSON
/// of an audio frame is a fraction of the copy it replaces.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TextFrame(bytes::Bytes);

impl TextFrame {
    /// The frame over `bytes`, which must be UTF-8.
    pub fn from_utf8(bytes: bytes::Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Checked at construction; cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Deref for TextFrame {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for TextFrame {
    fn from(text: String) -> Self {
        Self(bytes::Bytes::from(text))
    }
}

impl From<&str> for TextFrame {
    fn from(text: &str) -> Self {
        Self(bytes::Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl fmt::Debug for TextFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TextFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_hold_utf8_only() {
        let frame = TextFrame::from_utf8(bytes::Bytes::from_static("{\"type\":\"ü\"}".as_bytes()))
            .unwrap_or_default();
        assert_eq!(frame.as_str(), "{\"type\":\"ü\"}");
        assert!(TextFrame::from_utf8(bytes::Bytes::from_static(&[0xff, 0xfe])).is_err());
        assert_eq!(&*TextFrame::from(String::from("abc")), "abc");
        assert_eq!(TextFrame::from("abc"), TextFrame::from(String::from("abc")));
        assert_eq!(format!("{:?}", TextFrame::from("a\"b")), "\"a\\\"b\"");
    }
}
