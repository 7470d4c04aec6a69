#!/usr/bin/env python3
"""Scripted conversations against AgentVoiceBox's /v1/realtime through the official `openai` Python SDK.

Run by crates/avb-server/tests/openai_sdk.rs with the interpreter of $AVB_PEERS_DIR/openai-sdk/venv (installed by
scripts/install-peers.sh). Every scenario opens its own connection with `client.realtime.connect` (GA) or
`client.beta.realtime.connect` (beta), drives it with the SDK's own methods, reads every server event through the
SDK (`recv_bytes` + `parse_event`: the SDK must type each event as the class its union names for that `type`), and
checks the exact sequence of event types and the fields that matter. The first mismatch ends the run with exit code
1 and a message naming the scenario, the step and what was seen; success prints a JSON summary on stdout.

    OPENAI_API_KEY=avb_... realtime_sdk.py --dialect ga --base-url http://127.0.0.1:8000/v1 \
        [--websocket-base-url ws://127.0.0.1:8000/v1] [--ca ca.pem] [--scenarios text,vad,...]

The conversation content (the model's reply, the tool call, what speech-to-text hears) comes from the server's
`AVB_VOICE_SCRIPT` file, given here as --voice-script (default: voice_script.json beside this file). Speech comes from
crates/avb-voice/tests/fixtures (16 kHz), resampled to the protocol's 24 kHz pcm16.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import json
import os
import ssl
import sys
import time
import traceback
import typing
import wave
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
FIXTURES = REPO / "crates" / "avb-voice" / "tests" / "fixtures"

# pcm16 mono at 24 kHz: bytes per millisecond.
BYTES_PER_MS = 48
# The server refuses an input buffer above 15 MiB (avb_voice::realtime::engine::MAX_INPUT_AUDIO_BYTES).
MAX_INPUT_AUDIO_BYTES = 15 * 1024 * 1024
EVENT_TIMEOUT_S = 20.0


class Mismatch(Exception):
    """A server behaviour that differs from what the scenario expects."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


# ---- the SDK's event unions ---------------------------------------------------------------------------------------


def union_table(union: Any) -> dict[str, type]:
    """Maps each `type` literal of an SDK server-event union to the class the SDK builds for it."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    table: dict[str, type] = {}
    for cls in typing.get_args(union):
        for literal in typing.get_args(cls.model_fields["type"].annotation):
            table[literal] = cls
    return table


def sdk_tables() -> dict[str, dict[str, type]]:
    from openai.types.beta.realtime import RealtimeServerEvent as BetaEvent
    from openai.types.realtime import RealtimeServerEvent as GaEvent

    return {"ga": union_table(GaEvent), "beta": union_table(BetaEvent)}


# Event names that differ between the dialects (reference openai-realtime-events.md §3).
NAMES = {
    "ga": {
        "item_created": "conversation.item.added",
        "text_delta": "response.output_text.delta",
        "text_done": "response.output_text.done",
        "audio_delta": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript_delta": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "text_part": "output_text",
        "audio_part": "output_audio",
    },
    "beta": {
        "item_created": "conversation.item.created",
        "text_delta": "response.text.delta",
        "text_done": "response.text.done",
        "audio_delta": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript_delta": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "text_part": "text",
        "audio_part": "audio",
    },
}


# ---- audio --------------------------------------------------------------------------------------------------------


def read_wav_16k(path: Path) -> array.array:
    with wave.open(str(path), "rb") as w:
        check(
            (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000),
            f"{path.name}: expected 16 kHz mono pcm16",
        )
        samples = array.array("h")
        samples.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


def resample_16k_to_24k(samples: array.array) -> bytes:
    """Linear interpolation from 16 kHz to 24 kHz, pcm16 little-endian bytes."""
    out = array.array("h")
    n = len(samples)
    for i in range(n * 3 // 2):
        pos = i * 2 / 3
        i0 = int(pos)
        frac = pos - i0
        a = samples[i0]
        b = samples[i0 + 1] if i0 + 1 < n else a
        out.append(int(round(a + (b - a) * frac)))
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def silence(ms: int) -> bytes:
    return bytes(ms * BYTES_PER_MS)


def chunks(audio: bytes, ms: int = 100) -> list[str]:
    step = ms * BYTES_PER_MS
    return [base64.b64encode(audio[i : i + step]).decode() for i in range(0, len(audio), step)]


# ---- event stream -------------------------------------------------------------------------------------------------


class Conversation:
    """One connection: sends through the SDK, receives through the SDK, records what it saw."""

    def __init__(self, conn: Any, dialect: str, scenario: str, tables: dict[str, dict[str, type]]) -> None:
        self.conn = conn
        self.dialect = dialect
        self.scenario = scenario
        self.names = NAMES[dialect]
        self.table = tables[dialect]
        self.count = 0
        self.event_ids: set[str] = set()

    def n(self, key: str) -> str:
        return self.names[key]

    async def recv(self, timeout: float = EVENT_TIMEOUT_S) -> tuple[Any, dict]:
        """The next server event as the SDK types it, plus its JSON. `rate_limits.updated` must follow every
        `response.created` at once (the server reports the caller's request budget there); it is checked here and
        not returned, so scenarios assert the response events themselves."""
        event, data = await self._recv_one(timeout)
        previous, self.last_type = getattr(self, "last_type", None), event.type
        if previous == "response.created":
            equal(event.type, "rate_limits.updated", "the event after response.created")
            limits = data.get("rate_limits")
            check(isinstance(limits, list) and len(limits) == 1, f"rate_limits: {short(data)}")
            equal(limits[0].get("name"), "requests", "rate_limits[0].name")
            check(isinstance(limits[0].get("limit"), int) and limits[0]["limit"] > 0, "rate_limits[0].limit")
            check(0 <= limits[0].get("remaining", -1) <= limits[0]["limit"], "rate_limits[0].remaining")
            self.rate_limit_updates = getattr(self, "rate_limit_updates", 0) + 1
            event, data = await self._recv_one(timeout)
            self.last_type = event.type
        else:
            check(event.type != "rate_limits.updated", "rate_limits.updated not right after response.created")
        return event, data

    async def _recv_one(self, timeout: float) -> tuple[Any, dict]:
        try:
            raw = await asyncio.wait_for(self.conn.recv_bytes(), timeout)
        except asyncio.TimeoutError:
            raise Mismatch(f"no server event within {timeout} s") from None
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise Mismatch(f"the server sent a non-JSON text frame: {raw[:200]!r}") from e
        event = self.conn.parse_event(raw)
        kind = data.get("type")
        cls = self.table.get(kind)
        check(cls is not None, f"server event type {kind!r} is not in the {self.dialect} SDK's event union")
        check(
            isinstance(event, cls),
            f"the SDK parsed {kind!r} as {type(event).__name__}, expected {cls.__name__}",
        )
        event_id = data.get("event_id")
        check(isinstance(event_id, str) and event_id != "", f"{kind} has no event_id: {data}")
        check(event_id not in self.event_ids, f"{kind}: event_id {event_id} repeated")
        self.event_ids.add(event_id)
        self.count += 1
        return event, data

    async def expect(self, *kinds: str) -> list[Any]:
        """Exactly the next events, by type."""
        events = []
        for kind in kinds:
            event, data = await self.recv()
            check(
                event.type == kind,
                f"expected {kind!r} (after {[e.type for e in events]}), got {event.type!r}: {short(data)}",
            )
            events.append(event)
        return events

    async def until(self, last: str) -> list[Any]:
        """Events up to and including the first of type `last`."""
        events = []
        while True:
            event, _ = await self.recv()
            events.append(event)
            if event.type == last:
                return events

    async def error(self, code: str, event_id: str | None = None, param: str | None = None) -> Any:
        """The next event is an `error` with `code` (naming `event_id` / `param` when given)."""
        (event,) = await self.expect("error")
        equal(event.error.code, code, "error.code")
        equal(event.error.type, "invalid_request_error", "error.type")
        check(bool(event.error.message), "error.message is empty")
        if event_id is not None:
            equal(event.error.event_id, event_id, "error.event_id")
        if param is not None:
            equal(event.error.param, param, "error.param")
        return event

    async def quiet(self, seconds: float = 0.3) -> None:
        """Nothing more arrives for `seconds`."""
        try:
            raw = await asyncio.wait_for(self.conn.recv_bytes(), seconds)
        except asyncio.TimeoutError:
            return
        raise Mismatch(f"unexpected event: {short(json.loads(raw))}")

    async def user_text(self, text: str, previous_item_id: Any = None) -> Any:
        """Adds a user text message; returns the item as the server announced it."""
        kwargs: dict[str, Any] = {
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        }
        if previous_item_id is not None:
            kwargs["previous_item_id"] = previous_item_id
        await self.conn.conversation.item.create(**kwargs)
        if self.dialect == "ga":
            added, done = await self.expect("conversation.item.added", "conversation.item.done")
            equal(done.item.id, added.item.id, "conversation.item.done item.id")
            equal(done.previous_item_id, added.previous_item_id, "conversation.item.done previous_item_id")
            created = added
        else:
            (created,) = await self.expect("conversation.item.created")
        equal(created.item.role, "user", "item.role")
        equal(created.item.type, "message", "item.type")
        equal(created.item.content[0].text, text, "item.content[0].text")
        check(bool(created.item.id), "the new item has no id")
        return created


def short(data: dict) -> str:
    text = json.dumps(data)
    return text if len(text) < 400 else text[:400] + "…"


def shape(events: list[Any], collapse: set[str]) -> list[str]:
    """Event types, with a run of types from `collapse` shown once as `*` (order inside the run free)."""
    out: list[str] = []
    for event in events:
        if event.type in collapse:
            if out and out[-1] == "*":
                continue
            out.append("*")
        else:
            out.append(event.type)
    return out


def text_response_shape(c: Conversation) -> list[str]:
    ga = c.dialect == "ga"
    return [
        "response.created",
        "response.output_item.added",
        c.n("item_created"),
        "response.content_part.added",
        "*",
        c.n("text_done"),
        "response.content_part.done",
        *(["conversation.item.done"] if ga else []),
        "response.output_item.done",
        "response.done",
    ]


def audio_response_shape(c: Conversation) -> list[str]:
    ga = c.dialect == "ga"
    return [
        "response.created",
        "response.output_item.added",
        c.n("item_created"),
        "response.content_part.added",
        "*",
        c.n("audio_done"),
        c.n("transcript_done"),
        "response.content_part.done",
        *(["conversation.item.done"] if ga else []),
        "response.output_item.done",
        "response.done",
    ]


def check_response(
    c: Conversation, events: list[Any], reply: str, audio: bool, previous_item_id: Any = "any"
) -> dict:
    """A completed message response: exact sequence, ids, text, audio and usage. Returns facts for the summary."""
    deltas = {c.n("transcript_delta"), c.n("audio_delta")} if audio else {c.n("text_delta")}
    expected = audio_response_shape(c) if audio else text_response_shape(c)
    equal(shape(events, deltas), expected, "response event sequence")
    created, added = events[0], events[1]
    response_id = created.response.id
    check(bool(response_id), "response.created has no response.id")
    equal(created.response.status, "in_progress", "response.created status")
    equal(created.response.object, "realtime.response", "response.object")
    item_id = added.item.id
    equal(added.item.role, "assistant", "output_item.added item.role")
    equal(added.item.status, "in_progress", "output_item.added item.status")
    equal(added.output_index, 0, "output_item.added output_index")
    conv_added = events[2]
    equal(conv_added.item.id, item_id, f"{c.n('item_created')} item.id")
    if previous_item_id != "any":
        equal(conv_added.previous_item_id, previous_item_id, f"{c.n('item_created')} previous_item_id")
    for event in events[1:]:
        if hasattr(event, "response_id") and event.response_id is not None:
            equal(event.response_id, response_id, f"{event.type} response_id")
        if event.type not in ("response.done",) and getattr(event, "item_id", None) is not None:
            equal(event.item_id, item_id, f"{event.type} item_id")
    part_added = events[3]
    equal(part_added.part.type, "audio" if audio else "text", "content_part.added part.type")
    if audio:
        text = "".join(e.delta for e in events if e.type == c.n("transcript_delta"))
        (done_text,) = [e.transcript for e in events if e.type == c.n("transcript_done")]
        pcm = b"".join(base64.b64decode(e.delta) for e in events if e.type == c.n("audio_delta"))
        check(len(pcm) > 0 and len(pcm) % 2 == 0, f"audio deltas hold {len(pcm)} bytes of pcm16")
        first_delta = next(e for e in events if e.type in deltas)
        equal(first_delta.type, c.n("transcript_delta"), "first delta (speech follows its text)")
    else:
        text = "".join(e.delta for e in events if e.type == c.n("text_delta"))
        (done_text,) = [e.text for e in events if e.type == c.n("text_done")]
        pcm = b""
    equal(text, reply, "concatenated deltas")
    equal(done_text, reply, "done text")
    part_done = next(e for e in events if e.type == "response.content_part.done")
    if audio:
        equal(part_done.part.transcript, reply, "content_part.done part.transcript")
    else:
        equal(part_done.part.text, reply, "content_part.done part.text")
    item_done = next(e for e in events if e.type == "response.output_item.done")
    equal(item_done.item.status, "completed", "output_item.done item.status")
    done = events[-1].response
    equal(done.id, response_id, "response.done response.id")
    equal(done.status, "completed", "response.done status")
    equal(len(done.output), 1, "response.done output length")
    out = done.output[0]
    equal(out.id, item_id, "response.done output[0].id")
    equal(out.status, "completed", "response.done output[0].status")
    part = out.content[0]
    if audio:
        equal(part.type, c.n("audio_part"), "response.done output[0].content[0].type")
        equal(part.transcript, reply, "response.done output[0].content[0].transcript")
        check(getattr(part, "audio", None) is None, "response.done must not carry audio bytes")
    else:
        equal(part.type, c.n("text_part"), "response.done output[0].content[0].type")
        equal(part.text, reply, "response.done output[0].content[0].text")
    modalities = done.output_modalities if c.dialect == "ga" else sorted(done.modalities or [])
    equal(modalities, (["audio"] if c.dialect == "ga" else ["audio", "text"]) if audio else ["text"], "modalities")
    check(done.usage is not None and done.usage.output_tokens > 0, f"response.done usage: {done.usage}")
    equal(done.usage.total_tokens, done.usage.input_tokens + done.usage.output_tokens, "usage.total_tokens")
    return {"response_id": response_id, "item_id": item_id, "audio_bytes": len(pcm), "events": len(events)}


# ---- session configurations per dialect ---------------------------------------------------------------------------


def session_config(
    dialect: str,
    *,
    audio: bool,
    vad: bool,
    transcription: bool = True,
    instructions: str | None = None,
    tools: list[dict] | None = None,
    tool_choice: str | None = None,
) -> dict:
    turn = (
        {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
        }
        if vad
        else None
    )
    stt = {"model": "whisper-1"} if transcription else None
    if dialect == "ga":
        session: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": ["audio"] if audio else ["text"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": stt,
                    "turn_detection": turn,
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
            },
        }
    else:
        session = {
            "modalities": ["text", "audio"] if audio else ["text"],
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": stt,
            "turn_detection": turn,
            "voice": "alloy",
        }
    if instructions is not None:
        session["instructions"] = instructions
    if tools is not None:
        session["tools"] = tools
    if tool_choice is not None:
        session["tool_choice"] = tool_choice
    return session


def check_session(c: Conversation, session: Any, *, audio: bool, vad: bool, transcription: bool = True) -> None:
    """The effective configuration echoed in session.created / session.updated."""
    check(isinstance(session.id, str) and session.id.startswith("sess_"), f"session.id {session.id!r}")
    if c.dialect == "ga":
        equal(session.type, "realtime", "session.type")
        equal(session.output_modalities, ["audio"] if audio else ["text"], "session.output_modalities")
        turn = session.audio.input.turn_detection
        stt = session.audio.input.transcription
        equal(session.audio.input.format.type, "audio/pcm", "session.audio.input.format.type")
        equal(session.audio.input.format.rate, 24000, "session.audio.input.format.rate")
    else:
        equal(session.object, "realtime.session", "session.object")
        equal(sorted(session.modalities), ["audio", "text"] if audio else ["text"], "session.modalities")
        turn = session.turn_detection
        stt = session.input_audio_transcription
        equal(session.input_audio_format, "pcm16", "session.input_audio_format")
    if vad:
        check(turn is not None, "session turn_detection is null, expected server_vad")
        equal(turn.type, "server_vad", "turn_detection.type")
        equal(turn.silence_duration_ms, 500, "turn_detection.silence_duration_ms")
        equal(turn.prefix_padding_ms, 300, "turn_detection.prefix_padding_ms")
    else:
        equal(turn, None, "session turn_detection")
    if transcription:
        check(stt is not None and stt.model == "whisper-1", f"session transcription: {stt}")
    else:
        equal(stt, None, "session transcription")


# ---- scenarios ----------------------------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dialect: str = args.dialect
        script = json.loads(Path(args.voice_script).read_text())
        texts = [r["text"] for r in script["replies"] if "text" in r]
        calls = [r["tool_call"] for r in script["replies"] if "tool_call" in r]
        check(len(texts) == 1 and len(calls) == 1, "the voice script needs one text reply and one tool call")
        self.reply: str = texts[0]
        self.tool: dict = calls[0]
        self.transcript: str = script["transcripts"][0]
        self.tables = sdk_tables()
        speech = read_wav_16k(Path(args.fixtures) / "hello_16k.wav")
        self.hello = resample_16k_to_24k(speech)
        kwargs: dict[str, Any] = {"api_key": os.environ["OPENAI_API_KEY"], "base_url": args.base_url}
        if args.websocket_base_url:
            kwargs["websocket_base_url"] = args.websocket_base_url
        self.client = AsyncOpenAI(**kwargs)
        self.ws_options: dict[str, Any] = {}
        if args.ca:
            self.ws_options["ssl"] = ssl.create_default_context(cafile=args.ca)
        self.model = "gpt-realtime" if self.dialect == "ga" else "gpt-4o-realtime-preview"

    def connect(self) -> Any:
        realtime = self.client.realtime if self.dialect == "ga" else self.client.beta.realtime
        return realtime.connect(model=self.model, websocket_connection_options=self.ws_options)

    async def open(self, conn: Any, scenario: str) -> tuple[Conversation, Any]:
        c = Conversation(conn, self.dialect, scenario, self.tables)
        (created,) = await c.expect("session.created")
        session = created.session
        equal(session.model, self.model, "session.created session.model")
        # The server's defaults: audio out, server VAD, no input transcription.
        check_session(c, session, audio=True, vad=True, transcription=False)
        return c, session

    async def configure(self, c: Conversation, **kw: Any) -> Any:
        await c.conn.session.update(session=session_config(self.dialect, **kw))
        (updated,) = await c.expect("session.updated")
        check_session(
            c,
            updated.session,
            audio=kw["audio"],
            vad=kw["vad"],
            transcription=kw.get("transcription", True),
        )
        return updated.session

    # -- a text turn, and session.update ---------------------------------------------------------------------------
    async def text(self, c: Conversation) -> dict:
        session = await self.configure(c, audio=False, vad=False, instructions="Be brief.")
        equal(session.instructions, "Be brief.", "session.updated instructions")
        # A refused update changes nothing and names the parameter.
        bad = (
            {"type": "realtime", "audio": {"output": {"speed": 99}}}
            if self.dialect == "ga"
            else {"temperature": 9.0}
        )
        await c.conn.session.update(session=bad, event_id="evt_bad_update")
        param = "session.audio.output.speed" if self.dialect == "ga" else "session.temperature"
        await c.error("invalid_value", "evt_bad_update", param)
        # Only the fields present change: instructions replaced, everything else kept.
        partial = {"type": "realtime", "instructions": "Be very brief."} if self.dialect == "ga" else {
            "instructions": "Be very brief."
        }
        await c.conn.session.update(session=partial)
        (updated,) = await c.expect("session.updated")
        equal(updated.session.instructions, "Be very brief.", "session.updated instructions")
        check_session(c, updated.session, audio=False, vad=False)

        user = await c.user_text("Hi there!")
        equal(user.previous_item_id, None, "first item previous_item_id")
        await c.conn.response.create()
        events = await c.until("response.done")
        facts = check_response(c, events, self.reply, audio=False, previous_item_id=user.item.id)
        # A second turn follows the first assistant item.
        second = await c.user_text("And again?")
        equal(second.previous_item_id, facts["item_id"], "second user item previous_item_id")
        await c.conn.response.create()
        check_response(c, await c.until("response.done"), self.reply, audio=False, previous_item_id=second.item.id)
        await c.quiet()
        return facts

    # -- server VAD: speech in, audio out --------------------------------------------------------------------------
    async def vad(self, c: Conversation) -> dict:
        await self.configure(c, audio=True, vad=True)
        for chunk in chunks(self.hello):
            await c.conn.input_audio_buffer.append(audio=chunk)
        events = await c.until("response.done")
        ga = self.dialect == "ga"
        turn = [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            c.n("item_created"),
            *(["conversation.item.done"] if ga else []),
            "conversation.item.input_audio_transcription.completed",
        ]
        equal([e.type for e in events[: len(turn)]], turn, "server-VAD turn sequence")
        started, stopped, committed, item = events[0], events[1], events[2], events[3]
        transcribed = events[len(turn) - 1]
        user_id = started.item_id
        check(bool(user_id), "speech_started has no item_id")
        for event, what in ((stopped, "speech_stopped"), (committed, "committed"), (transcribed, "transcription")):
            equal(event.item_id, user_id, f"{what} item_id")
        equal(item.item.id, user_id, f"{item.type} item.id")
        equal(committed.previous_item_id, None, "committed previous_item_id")
        equal(item.item.role, "user", "user item role")
        equal(item.item.content[0].type, "input_audio", "user item content type")
        equal(transcribed.transcript, self.transcript, "input transcription")
        equal(transcribed.content_index, 0, "transcription content_index")
        # The fixture: 0.5 s silence, ~1.5 s speech, 1 s silence; 300 ms prefix padding, 500 ms silence to stop.
        start, end = started.audio_start_ms, stopped.audio_end_ms
        check(100 <= start <= 450, f"audio_start_ms {start} (speech starts ~500 ms in, minus 300 ms padding)")
        check(2000 <= end <= 2900, f"audio_end_ms {end} (speech ends ~2 s in, plus 500 ms silence)")
        facts = check_response(c, events[len(turn) :], self.reply, audio=True, previous_item_id=user_id)
        # The transcript is stored on the user item.
        await c.conn.conversation.item.retrieve(item_id=user_id)
        (retrieved,) = await c.expect("conversation.item.retrieved")
        equal(retrieved.item.id, user_id, "retrieved item.id")
        equal(retrieved.item.content[0].transcript, self.transcript, "retrieved user item transcript")
        # The committed audio is the turn: from its (padded) start to its end.
        kept = len(base64.b64decode(retrieved.item.content[0].audio or ""))
        check(abs(kept - (end - start) * BYTES_PER_MS) <= BYTES_PER_MS, f"user item holds {kept} bytes of audio")
        await c.quiet()
        return {**facts, "audio_start_ms": start, "audio_end_ms": end}

    # -- push-to-talk ----------------------------------------------------------------------------------------------
    async def push_to_talk(self, c: Conversation) -> dict:
        await self.configure(c, audio=False, vad=False)
        await c.conn.input_audio_buffer.commit(event_id="evt_empty")
        await c.error("input_audio_buffer_commit_empty", "evt_empty")
        for chunk in chunks(silence(300)):
            await c.conn.input_audio_buffer.append(audio=chunk)
        await c.conn.input_audio_buffer.clear()
        await c.expect("input_audio_buffer.cleared")
        for chunk in chunks(self.hello):
            await c.conn.input_audio_buffer.append(audio=chunk)
        await c.quiet()  # no VAD events without turn detection
        await c.conn.input_audio_buffer.commit()
        ga = self.dialect == "ga"
        committed, item, *rest = await c.expect(
            "input_audio_buffer.committed",
            c.n("item_created"),
            *(["conversation.item.done"] if ga else []),
            "conversation.item.input_audio_transcription.completed",
        )
        transcribed = rest[-1]
        equal(item.item.id, committed.item_id, "committed item id")
        equal(transcribed.item_id, committed.item_id, "transcription item_id")
        equal(transcribed.transcript, self.transcript, "input transcription")
        equal(item.item.content[0].type, "input_audio", "user item content type")
        await c.quiet()  # committing does not answer
        await c.conn.response.create()
        events = await c.until("response.done")
        facts = check_response(c, events, self.reply, audio=False, previous_item_id=committed.item_id)
        await c.quiet()
        return facts

    # -- barge-in: the caller talks over the spoken reply ----------------------------------------------------------
    async def barge_in(self, c: Conversation) -> dict:
        await self.configure(c, audio=True, vad=True)
        user = await c.user_text("Tell me something long.")
        await c.conn.response.create()
        before = await c.until(c.n("audio_delta"))
        equal(
            [e.type for e in before[:4]],
            ["response.created", "response.output_item.added", c.n("item_created"), "response.content_part.added"],
            "response start",
        )
        response_id = before[0].response.id
        assistant_id = before[1].item.id
        # Speech up to 2.2 s of the fixture: the ~1.5 s utterance and 200 ms of its silence (not enough to end it).
        for chunk in chunks(self.hello[: 2200 * BYTES_PER_MS]):
            await c.conn.input_audio_buffer.append(audio=chunk)
        after = await c.until("response.done")
        events = before + after
        kinds = [e.type for e in events]
        check("input_audio_buffer.speech_started" in kinds, f"no speech_started before response.done: {kinds}")
        at = kinds.index("input_audio_buffer.speech_started")
        ga = self.dialect == "ga"
        equal(
            kinds[at:],
            [
                "input_audio_buffer.speech_started",
                *(["conversation.item.done"] if ga else []),
                "response.output_item.done",
                "response.done",
            ],
            "barge-in: nothing but the item's end and response.done after speech_started",
        )
        deltas = {c.n("transcript_delta"), c.n("audio_delta")}
        check(all(k in deltas for k in kinds[4:at]), f"only deltas before the barge-in: {kinds[4:at]}")
        done = events[-1].response
        equal(done.id, response_id, "cancelled response id")
        equal(done.status, "cancelled", "barge-in response status")
        equal(done.status_details.reason, "turn_detected", "barge-in status_details.reason")
        equal(done.output[0].id, assistant_id, "cancelled output item id")
        equal(done.output[0].status, "incomplete", "cancelled output item status")
        heard = "".join(e.delta for e in events if e.type == c.n("transcript_delta"))
        check(len(heard) < len(self.reply), f"the reply was cut, yet its whole text arrived: {heard!r}")
        pcm = b"".join(base64.b64decode(e.delta) for e in events if e.type == c.n("audio_delta"))
        received_ms = len(pcm) // BYTES_PER_MS
        check(received_ms >= 2, f"{len(pcm)} audio bytes before the barge-in")
        speech_started = events[at]
        speech_item = speech_started.item_id

        # The app stopped playback half-way through what it had: truncate the assistant's audio there.
        played_ms = received_ms // 2
        await c.conn.conversation.item.truncate(item_id=assistant_id, content_index=0, audio_end_ms=played_ms)
        (truncated,) = await c.expect("conversation.item.truncated")
        equal(
            (truncated.item_id, truncated.content_index, truncated.audio_end_ms),
            (assistant_id, 0, played_ms),
            "conversation.item.truncated",
        )
        await c.conn.conversation.item.retrieve(item_id=assistant_id)
        (retrieved,) = await c.expect("conversation.item.retrieved")
        part = retrieved.item.content[0]
        equal(len(base64.b64decode(part.audio or "")), played_ms * BYTES_PER_MS, "truncated audio bytes")
        check(self.reply.startswith(part.transcript or ""), f"truncated transcript {part.transcript!r}")
        check(len(part.transcript or "") < len(heard) or not heard, "the transcript was cut with the audio")
        # Truncating past the end of the audio is refused.
        await c.conn.conversation.item.truncate(
            item_id=assistant_id, content_index=0, audio_end_ms=received_ms + 10_000, event_id="evt_long"
        )
        await c.error("invalid_value", "evt_long", "audio_end_ms")

        # The caller's turn ends (silence) and is answered.
        for chunk in chunks(silence(1000)):
            await c.conn.input_audio_buffer.append(audio=chunk)
        events = await c.until("response.done")
        turn = [
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            c.n("item_created"),
            *(["conversation.item.done"] if ga else []),
            "conversation.item.input_audio_transcription.completed",
        ]
        equal([e.type for e in events[: len(turn)]], turn, "the interrupting turn")
        equal(events[0].item_id, speech_item, "speech_stopped item_id")
        equal(events[1].item_id, speech_item, "committed item_id")
        equal(events[1].previous_item_id, assistant_id, "committed previous_item_id (after the cut reply)")
        # Same fixture, same session timeline as the server-VAD scenario: the turn spans the utterance.
        start, end = speech_started.audio_start_ms, events[0].audio_end_ms
        check(100 <= start <= 450 and 2000 <= end <= 2900, f"interrupting turn {start}–{end} ms")
        check_response(c, events[len(turn) :], self.reply, audio=True, previous_item_id=speech_item)
        await c.quiet()
        return {"cut_after_ms": received_ms, "truncated_at_ms": played_ms, "user_item": user.item.id}

    # -- a function call round trip --------------------------------------------------------------------------------
    async def function_call(self, c: Conversation) -> dict:
        name = self.tool["name"]
        tool = {
            "type": "function",
            "name": name,
            "description": "Current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
        session = await self.configure(c, audio=False, vad=False, tools=[tool], tool_choice="required")
        equal([t.name for t in session.tools], [name], "session.tools")
        equal(session.tool_choice, "required", "session.tool_choice")
        user = await c.user_text("What is the weather in Oslo?")
        await c.conn.response.create()
        events = await c.until("response.done")
        ga = self.dialect == "ga"
        args_delta = "response.function_call_arguments.delta"
        equal(
            shape(events, {args_delta}),
            [
                "response.created",
                "response.output_item.added",
                c.n("item_created"),
                "*",
                "response.function_call_arguments.done",
                *(["conversation.item.done"] if ga else []),
                "response.output_item.done",
                "response.done",
            ],
            "function call response sequence",
        )
        added = events[1]
        equal(added.item.type, "function_call", "output_item.added item.type")
        equal(added.item.name, name, "output_item.added item.name")
        call_id = added.item.call_id
        check(bool(call_id), "the function_call item has no call_id")
        equal(events[2].previous_item_id, user.item.id, "function_call item previous_item_id")
        arguments = "".join(e.delta for e in events if e.type == args_delta)
        args_done = next(e for e in events if e.type == "response.function_call_arguments.done")
        for e in events:
            if e.type in (args_delta, "response.function_call_arguments.done"):
                equal((e.call_id, e.item_id, e.output_index), (call_id, added.item.id, 0), f"{e.type} ids")
        equal(args_done.arguments, arguments, "function_call_arguments.done arguments")
        equal(json.loads(arguments), self.tool["arguments"], "function arguments")
        if ga:
            equal(args_done.name, name, "function_call_arguments.done name")
        done = events[-1].response
        equal(done.status, "completed", "function call response status")
        out = done.output[0]
        equal((out.type, out.call_id, out.name, out.arguments), ("function_call", call_id, name, arguments), "output")

        await c.conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_id, "output": json.dumps({"sky": "clear"})}
        )
        if ga:
            result, _ = await c.expect("conversation.item.added", "conversation.item.done")
        else:
            (result,) = await c.expect("conversation.item.created")
        equal(result.item.type, "function_call_output", "function_call_output item.type")
        equal(result.item.call_id, call_id, "function_call_output call_id")
        equal(result.previous_item_id, added.item.id, "function_call_output previous_item_id")
        await c.conn.response.create(response={"tool_choice": "none"})
        facts = check_response(c, await c.until("response.done"), self.reply, audio=False, previous_item_id=result.item.id)
        await c.quiet()
        return {"call_id": call_id, "arguments": arguments, "answer_item": facts["item_id"]}

    # -- conversation items: insert, retrieve, delete, truncate ----------------------------------------------------
    async def items(self, c: Conversation) -> dict:
        await self.configure(c, audio=False, vad=False)
        first = await c.user_text("first")
        second = await c.user_text("second")
        equal(second.previous_item_id, first.item.id, "second previous_item_id")
        between = await c.user_text("between", previous_item_id=first.item.id)
        equal(between.previous_item_id, first.item.id, "inserted item previous_item_id")
        await c.conn.conversation.item.retrieve(item_id=between.item.id)
        (retrieved,) = await c.expect("conversation.item.retrieved")
        equal((retrieved.item.id, retrieved.item.content[0].text), (between.item.id, "between"), "retrieved item")

        await c.conn.conversation.item.delete(item_id=between.item.id)
        (deleted,) = await c.expect("conversation.item.deleted")
        equal(deleted.item_id, between.item.id, "conversation.item.deleted item_id")
        await c.conn.conversation.item.delete(item_id=between.item.id, event_id="evt_del_again")
        await c.error("item_not_found", "evt_del_again", "item_id")
        await c.conn.conversation.item.retrieve(item_id=between.item.id, event_id="evt_get_gone")
        await c.error("item_not_found", "evt_get_gone", "item_id")
        # Only an assistant message's audio can be truncated.
        await c.conn.conversation.item.truncate(
            item_id=first.item.id, content_index=0, audio_end_ms=0, event_id="evt_trunc_text"
        )
        await c.error("invalid_value", "evt_trunc_text", "content_index")
        await c.conn.conversation.item.truncate(
            item_id="item_missing", content_index=0, audio_end_ms=0, event_id="evt_trunc_missing"
        )
        await c.error("item_not_found", "evt_trunc_missing", "item_id")
        # Inserting after a missing item is refused.
        await c.conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
            previous_item_id="item_missing",
            event_id="evt_prev_missing",
        )
        await c.error("item_not_found", "evt_prev_missing", "previous_item_id")
        # The reply follows the last item that is left.
        await c.conn.response.create()
        facts = check_response(c, await c.until("response.done"), self.reply, audio=False, previous_item_id=second.item.id)
        await c.quiet()
        return {"deleted": between.item.id, "answer_item": facts["item_id"]}

    # -- bad input: errors, and the session stays usable -----------------------------------------------------------
    async def bad_input(self, c: Conversation) -> dict:
        await self.configure(c, audio=False, vad=False)
        await c.conn._connection.send("{not json")
        await c.error("invalid_json")
        await c.conn.send({"type": "no.such.event", "event_id": "evt_unknown"})
        await c.error("unknown_event", "evt_unknown", "type")
        await c.conn._connection.send(b"\x00\x01binary")
        await c.error("invalid_frame")
        await c.conn.send({"type": "input_audio_buffer.append", "event_id": "evt_b64", "audio": "not base64!"})
        await c.error("invalid_value", "evt_b64", "audio")
        await c.conn.send({"type": "conversation.item.delete", "event_id": "evt_no_id"})
        await c.error("missing_required_parameter", "evt_no_id", "item_id")
        started = time.monotonic()
        oversize = base64.b64encode(bytes(MAX_INPUT_AUDIO_BYTES + BYTES_PER_MS)).decode()
        await c.conn.input_audio_buffer.append(audio=oversize, event_id="evt_oversize")
        del oversize
        await c.error("input_audio_buffer_full", "evt_oversize")
        oversize_s = time.monotonic() - started
        await c.conn.response.cancel(event_id="evt_cancel_none")
        await c.error("response_cancel_not_active", "evt_cancel_none")
        # Still usable: a full turn.
        user = await c.user_text("Are you still there?")
        await c.conn.response.create()
        facts = check_response(c, await c.until("response.done"), self.reply, audio=False, previous_item_id=user.item.id)
        await c.quiet()
        return {"oversize_round_trip_s": round(oversize_s, 2), "answer_item": facts["item_id"]}


SCENARIOS = ["text", "vad", "push_to_talk", "barge_in", "function_call", "items", "bad_input"]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialect", choices=["ga", "beta"], required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--websocket-base-url")
    parser.add_argument("--ca", help="PEM CA certificate to trust for wss://")
    parser.add_argument("--voice-script", default=str(HERE / "voice_script.json"))
    parser.add_argument("--fixtures", default=str(FIXTURES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {SCENARIOS}")

    run = Run(args)
    summary: dict[str, Any] = {
        "sdk": "openai-python",
        "version": openai.__version__,
        "dialect": args.dialect,
        "transport": "wss" if args.ca else "ws",
        "scenarios": {},
    }
    for name in chosen:
        started = time.monotonic()
        scenario = getattr(run, name)
        try:
            async with run.connect() as conn:
                c, session = await run.open(conn, name)
                facts = await scenario(c)
                closing = time.monotonic()
            # The server answers the SDK's close (1000) at once, not after the client's close timeout.
            ws = conn._connection
            equal(ws.close_code, 1000, "close code received from the server")
            close_s = time.monotonic() - closing
            check(close_s < 2.0, f"the server took {close_s:.1f} s to answer the close")
        except Mismatch as e:
            print(f"FAIL python {args.dialect} scenario {name}: {e}", file=sys.stderr)
            print(json.dumps({**summary, "failed": name, "error": str(e)}), flush=True)
            return 1
        except Exception as e:  # an SDK or transport failure is a failure of the scenario too
            traceback.print_exc()
            print(f"FAIL python {args.dialect} scenario {name}: {type(e).__name__}: {e}", file=sys.stderr)
            print(json.dumps({**summary, "failed": name, "error": f"{type(e).__name__}: {e}"}), flush=True)
            return 1
        summary["scenarios"][name] = {
            "session": session.id,
            "events": c.count,
            "seconds": round(time.monotonic() - started, 2),
            **facts,
        }
    summary["ok"] = True
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
