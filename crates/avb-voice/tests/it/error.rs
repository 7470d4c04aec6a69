//! The crate's error codes are stable and map onto the core table.

use avb_core::{ErrorCode, HasCode};
use avb_voice::Error;

#[test]
fn every_variant_has_its_stable_code() {
    let cases: Vec<(Error, ErrorCode, u16)> = vec![
        (
            Error::invalid_audio("odd byte count"),
            ErrorCode::ValidationError,
            400,
        ),
        (
            Error::UnsupportedFormat("audio/opus".into()),
            ErrorCode::ValidationError,
            400,
        ),
        (
            Error::invalid_config("threshold", "1.5 is outside 0..=1"),
            ErrorCode::ValidationError,
            400,
        ),
        (Error::after_finish("push_audio"), ErrorCode::Conflict, 409),
        (Error::Cancelled, ErrorCode::Conflict, 409),
        (
            Error::LimitExceeded {
                what: "append",
                limit: 10,
                actual: 11,
            },
            ErrorCode::PayloadTooLarge,
            413,
        ),
        (
            Error::unavailable("whisper", "connection refused"),
            ErrorCode::ServiceUnavailable,
            503,
        ),
        (
            Error::Timeout {
                operation: "stt.finish",
            },
            ErrorCode::Timeout,
            504,
        ),
        (Error::Internal("bug".into()), ErrorCode::InternalError, 500),
        (
            Error::Core(avb_core::Error::TenantRequired),
            ErrorCode::TenantRequired,
            400,
        ),
    ];
    for (error, code, status) in cases {
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(error.code().status(), status, "{error}");
    }
}

#[test]
fn envelopes_carry_details_and_hide_server_side_causes() {
    let body = serde_json::to_value(
        Error::LimitExceeded {
            what: "input_audio_buffer",
            limit: 10,
            actual: 12,
        }
        .to_body(),
    )
    .unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "error": "payload_too_large",
            "message": "input_audio_buffer exceeds its limit of 10 bytes (12 bytes)",
            "details": {"limit": "input_audio_buffer", "max_bytes": 10, "actual_bytes": 12}
        })
    );
    let config = Error::invalid_config("speed", "0 is outside 0.25..=4").to_body();
    assert_eq!(config.details, serde_json::json!({"field": "speed"}));
    let hidden = Error::unavailable("whisper", "refused at 10.1.2.3:9000").to_body();
    assert_eq!(hidden.details, serde_json::json!({"dependency": "whisper"}));
    assert!(!hidden.message.contains("10.1.2.3"));
    assert!(
        !Error::Internal("secret".into())
            .to_body()
            .message
            .contains("secret")
    );
}

#[test]
fn only_provider_failures_are_temporary() {
    assert!(Error::unavailable("tts", "reset").is_temporary());
    assert!(
        Error::Timeout {
            operation: "llm.stream"
        }
        .is_temporary()
    );
    assert!(Error::Core(avb_core::Error::DeadlineExceeded).is_temporary());
    assert!(!Error::Cancelled.is_temporary());
    assert!(!Error::invalid_audio("x").is_temporary());
}
