//! The shared conformance suites against the in-process adapters.

use avb_voice::adapters::{EarshotVad, ScriptedLlm, ScriptedReply, ScriptedStt, ToneTts};

mod scripted_stt {
    avb_voice::stt_conformance!(async { super::ScriptedStt::new(["hello there", "what is the weather"]) });
}

mod tone_tts {
    avb_voice::tts_conformance!(async { super::ToneTts::default() });
}

mod scripted_llm {
    avb_voice::llm_conformance!(async {
        super::ScriptedLlm::new([
            super::ScriptedReply::text("Hello! How can I help you today?"),
            super::ScriptedReply::tool_call("get_weather", serde_json::json!({"city": "Paris"})),
        ])
        .cycling()
    });
}

mod earshot_vad {
    avb_voice::vad_conformance!(super::EarshotVad::new());
}
