//! The response gate: rate limits reported as `rate_limits.updated` right after `response.created`, and a
//! refused response answered with an `error` naming the client event while the session stays open.

use avb_core::{Ctx, RequestId, SequentialIds, UuidV7Ids};
use avb_voice::adapters::{ScriptedLlm, ScriptedReply, ScriptedStt, ToneTts};
use avb_voice::realtime::engine::{RealtimeSession, ResponseGate, SessionPorts};
use avb_voice::realtime::protocol::{
    Dialect, ErrorObject, RateLimit, RateLimitName, SessionConfig, SessionKind,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Admits `budget` responses, then refuses.
#[derive(Debug)]
struct Budget {
    left: AtomicU64,
}

#[async_trait::async_trait]
impl ResponseGate for Budget {
    async fn admit(&self) -> Result<Vec<RateLimit>, ErrorObject> {
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(ErrorObject::invalid_request("rate_limit_exceeded", "slow down"));
        }
        self.left.store(left - 1, Ordering::SeqCst);
        Ok(vec![RateLimit {
            name: RateLimitName::Requests,
            limit: 2,
            remaining: left - 1,
            reset_seconds: 30.0,
        }])
    }
}

async fn next(rx: &mut mpsc::Receiver<String>) -> Value {
    let frame = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(&frame).unwrap()
}

#[tokio::test]
async fn responses_report_rate_limits_and_a_refused_one_keeps_the_session_open() {
    let ports = SessionPorts {
        llm: Arc::new(ScriptedLlm::new([ScriptedReply::text("ok")]).cycling()),
        stt: Arc::new(ScriptedStt::new(["x"])),
        tts: Arc::new(ToneTts::default()),
        vad: None,
    };
    let (tx, incoming) = mpsc::channel(8);
    let (out, mut rx) = mpsc::channel(256);
    let mut config = SessionConfig::new(SessionKind::Realtime, "m");
    config.output_modalities = avb_voice::realtime::protocol::OutputModalities::Text;
    config.turn_detection = None;
    let session = RealtimeSession::new(
        Dialect::Ga,
        config,
        ports,
        Arc::new(SequentialIds::default()),
        Ctx::system(RequestId::generate(&UuidV7Ids), "test", None),
        out,
    )
    .with_response_gate(Arc::new(Budget {
        left: AtomicU64::new(1),
    }));
    let task = tokio::spawn(session.run(incoming));
    assert_eq!(next(&mut rx).await["type"], "session.created");

    tx.send(json!({"type": "response.create", "event_id": "first"}).to_string())
        .await
        .unwrap();
    let created = next(&mut rx).await;
    assert_eq!(created["type"], "response.created");
    let limits = next(&mut rx).await;
    assert_eq!(limits["type"], "rate_limits.updated", "{limits}");
    assert_eq!(
        limits["rate_limits"],
        json!([{"name": "requests", "limit": 2, "remaining": 0, "reset_seconds": 30.0}])
    );
    loop {
        if next(&mut rx).await["type"] == "response.done" {
            break;
        }
    }

    tx.send(json!({"type": "response.create", "event_id": "second"}).to_string())
        .await
        .unwrap();
    let refused = next(&mut rx).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused["error"]["event_id"], "second");

    // Still open: an item is acknowledged.
    tx.send(
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "hi"}]}})
        .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut rx).await["type"], "conversation.item.added");
    drop(tx);
    task.await.unwrap();
}
