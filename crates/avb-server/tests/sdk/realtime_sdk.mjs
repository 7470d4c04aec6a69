// Scripted conversations against AgentVoiceBox's /v1/realtime through the official `openai` Node SDK, over TLS.
//
// Run by crates/avb-server/tests/openai_sdk.rs with the modules installed by scripts/install-peers.sh in
// $AVB_PEERS_DIR/openai-sdk/node_modules. The SDK always dials wss://, so the server runs with a certificate whose
// CA is passed to the SDK's WebSocket as `options: { ca }`. Every scenario opens its own `OpenAIRealtimeWS`
// (`openai/realtime/ws` for GA, `openai/beta/realtime/ws` for beta), sends with `rt.send`, receives every server
// event on the SDK's `event` emitter (with an `error` listener, as the SDK requires), and checks the exact sequence
// of event types and the fields that matter. The first mismatch ends the run with exit code 1 and a message naming
// the scenario and what was seen; success prints a JSON summary on stdout.
//
//   OPENAI_API_KEY=avb_... node realtime_sdk.mjs --dialect ga --base-url https://127.0.0.1:8443/v1 --ca ca.pem
//
// The conversation content comes from the server's AVB_VOICE_SCRIPT (--voice-script, default voice_script.json
// beside this file); speech from crates/avb-voice/tests/fixtures (16 kHz), resampled to 24 kHz pcm16.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const REPO = path.resolve(HERE, '..', '..', '..', '..');
const BYTES_PER_MS = 48; // pcm16 mono 24 kHz
const MAX_INPUT_AUDIO_BYTES = 15 * 1024 * 1024;
const EVENT_TIMEOUT_MS = 20_000;

// ---- arguments and the SDK ------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const args = {
    dialect: null,
    baseUrl: null,
    ca: null,
    voiceScript: path.join(HERE, 'voice_script.json'),
    fixtures: path.join(REPO, 'crates', 'avb-voice', 'tests', 'fixtures'),
    scenarios: null,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const key = { '--dialect': 'dialect', '--base-url': 'baseUrl', '--ca': 'ca', '--voice-script': 'voiceScript',
      '--fixtures': 'fixtures', '--scenarios': 'scenarios' }[flag];
    if (!key || value === undefined) throw new Error(`usage: realtime_sdk.mjs --dialect ga|beta --base-url URL --ca PEM`);
    args[key] = value;
  }
  if (!['ga', 'beta'].includes(args.dialect) || !args.baseUrl || !args.ca) {
    throw new Error('--dialect ga|beta, --base-url and --ca are required');
  }
  return args;
}

/** The installed `openai` package: $AVB_OPENAI_NODE_MODULES, $AVB_PEERS_DIR/openai-sdk/node_modules, <repo>/.peers/…. */
async function loadSdk(dialect) {
  const candidates = [
    process.env.AVB_OPENAI_NODE_MODULES,
    process.env.AVB_PEERS_DIR && path.join(process.env.AVB_PEERS_DIR, 'openai-sdk', 'node_modules'),
    path.join(REPO, '.peers', 'openai-sdk', 'node_modules'),
  ].filter(Boolean);
  const modules = candidates.find((dir) => fs.existsSync(path.join(dir, 'openai', 'package.json')));
  if (!modules) {
    throw new Error(`the openai Node SDK is not installed (looked in ${candidates.join(', ')}): run scripts/install-peers.sh`);
  }
  const pkgDir = path.join(modules, 'openai');
  const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  const load = (file) => import(pathToFileURL(path.join(pkgDir, file)).href);
  const { OpenAI } = await load('index.mjs');
  const { OpenAIRealtimeWS } = await load(dialect === 'ga' ? 'realtime/ws.mjs' : 'beta/realtime/ws.mjs');
  return { OpenAI, OpenAIRealtimeWS, version };
}

// ---- checks -----------------------------------------------------------------------------------------------------------

class Mismatch extends Error {}

function check(condition, message) {
  if (!condition) throw new Mismatch(message);
}

function same(a, b) {
  return isDeepStrictEqual(a, b);
}

function equal(actual, expected, what) {
  if (!same(actual, expected)) {
    throw new Mismatch(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function short(event) {
  const text = JSON.stringify(event);
  return text.length < 400 ? text : `${text.slice(0, 400)}…`;
}

const NAMES = {
  ga: {
    item_created: 'conversation.item.added',
    text_delta: 'response.output_text.delta',
    text_done: 'response.output_text.done',
    audio_delta: 'response.output_audio.delta',
    audio_done: 'response.output_audio.done',
    transcript_delta: 'response.output_audio_transcript.delta',
    transcript_done: 'response.output_audio_transcript.done',
    text_part: 'output_text',
    audio_part: 'output_audio',
  },
  beta: {
    item_created: 'conversation.item.created',
    text_delta: 'response.text.delta',
    text_done: 'response.text.done',
    audio_delta: 'response.audio.delta',
    audio_done: 'response.audio.done',
    transcript_delta: 'response.audio_transcript.delta',
    transcript_done: 'response.audio_transcript.done',
    text_part: 'text',
    audio_part: 'audio',
  },
};

// ---- audio ------------------------------------------------------------------------------------------------------------

function readWav16k(file) {
  const buf = fs.readFileSync(file);
  check(buf.toString('ascii', 0, 4) === 'RIFF' && buf.toString('ascii', 8, 12) === 'WAVE', `${file}: not a WAV file`);
  let offset = 12;
  let format = null;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = { channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      check(same(format, { channels: 1, rate: 16000, bits: 16 }), `${file}: expected 16 kHz mono pcm16, got ${JSON.stringify(format)}`);
      const samples = new Int16Array(size / 2);
      for (let i = 0; i < samples.length; i += 1) samples[i] = buf.readInt16LE(body + 2 * i);
      return samples;
    }
    offset = body + size + (size % 2);
  }
  throw new Mismatch(`${file}: no data chunk`);
}

/** Linear interpolation 16 kHz → 24 kHz, as pcm16 little-endian bytes. */
function resample16kTo24k(samples) {
  const n = samples.length;
  const out = Buffer.alloc(Math.floor((n * 3) / 2) * 2);
  for (let i = 0; i < out.length / 2; i += 1) {
    const pos = (i * 2) / 3;
    const i0 = Math.floor(pos);
    const frac = pos - i0;
    const a = samples[i0];
    const b = i0 + 1 < n ? samples[i0 + 1] : a;
    out.writeInt16LE(Math.round(a + (b - a) * frac), 2 * i);
  }
  return out;
}

const silence = (ms) => Buffer.alloc(ms * BYTES_PER_MS);

function chunks(audio, ms = 100) {
  const step = ms * BYTES_PER_MS;
  const out = [];
  for (let i = 0; i < audio.length; i += step) out.push(audio.subarray(i, i + step).toString('base64'));
  return out;
}

const b64len = (text) => Buffer.from(text ?? '', 'base64').length;

// ---- one connection ---------------------------------------------------------------------------------------------------

class Conversation {
  constructor(rt, dialect) {
    this.rt = rt;
    this.dialect = dialect;
    this.names = NAMES[dialect];
    this.queue = [];
    this.waiters = [];
    this.failure = null;
    this.count = 0;
    this.eventIds = new Set();
    this.closed = null;
    rt.on('event', (event) => this.push(event));
    // Required by the SDK (an `error` event without a listener is an unhandled rejection). Server `error` events
    // also arrive on `event`; anything else here (unparsable frame, socket error) fails the scenario.
    rt.on('error', (err) => {
      if (!err?.error) this.fail(new Mismatch(`SDK error: ${err?.message ?? err}`));
    });
    this.opened = new Promise((resolve, reject) => {
      rt.socket.once('open', resolve);
      rt.socket.once('error', reject);
    });
    this.closedAt = new Promise((resolve) => {
      rt.socket.once('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve(this.closed);
        this.fail(new Mismatch(`the socket closed (${code} ${reason})`));
      });
    });
  }

  n(key) {
    return this.names[key];
  }

  push(event) {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(event);
    else this.queue.push(event);
  }

  fail(err) {
    if (!this.failure) this.failure = err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }

  // `rate_limits.updated` must follow every `response.created` at once (the caller's request budget); it is
  // checked here and not returned, so scenarios assert the response events themselves.
  async recv(timeout = EVENT_TIMEOUT_MS) {
    let event = await this.recvOne(timeout);
    const previous = this.lastType;
    this.lastType = event.type;
    if (previous === 'response.created') {
      equal(event.type, 'rate_limits.updated', 'the event after response.created');
      const limits = event.rate_limits;
      check(Array.isArray(limits) && limits.length === 1, `rate_limits: ${short(event)}`);
      equal(limits[0].name, 'requests', 'rate_limits[0].name');
      check(Number.isInteger(limits[0].limit) && limits[0].limit > 0, 'rate_limits[0].limit');
      check(limits[0].remaining >= 0 && limits[0].remaining <= limits[0].limit, 'rate_limits[0].remaining');
      this.rateLimitUpdates = (this.rateLimitUpdates || 0) + 1;
      event = await this.recvOne(timeout);
      this.lastType = event.type;
    } else {
      check(event.type !== 'rate_limits.updated', 'rate_limits.updated not right after response.created');
    }
    return event;
  }

  async recvOne(timeout) {
    let event;
    if (this.queue.length) {
      event = this.queue.shift();
    } else {
      if (this.failure) throw this.failure;
      event = await new Promise((resolve, reject) => {
        const waiter = { resolve, reject };
        this.waiters.push(waiter);
        const timer = setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new Mismatch(`no server event within ${timeout} ms`));
        }, timeout);
        const settle = (fn) => (value) => { clearTimeout(timer); fn(value); };
        waiter.resolve = settle(resolve);
        waiter.reject = settle(reject);
      });
    }
    check(typeof event.type === 'string' && event.type !== '', `event without a type: ${short(event)}`);
    check(typeof event.event_id === 'string' && event.event_id !== '', `${event.type} has no event_id`);
    check(!this.eventIds.has(event.event_id), `${event.type}: event_id ${event.event_id} repeated`);
    this.eventIds.add(event.event_id);
    this.count += 1;
    return event;
  }

  async expect(...kinds) {
    const events = [];
    for (const kind of kinds) {
      const event = await this.recv();
      check(event.type === kind, `expected ${kind} (after ${JSON.stringify(events.map((e) => e.type))}), got ${event.type}: ${short(event)}`);
      events.push(event);
    }
    return events;
  }

  async until(last) {
    const events = [];
    for (;;) {
      const event = await this.recv();
      events.push(event);
      if (event.type === last) return events;
    }
  }

  async error(code, eventId, param) {
    const [event] = await this.expect('error');
    equal(event.error.code, code, 'error.code');
    equal(event.error.type, 'invalid_request_error', 'error.type');
    check(!!event.error.message, 'error.message is empty');
    if (eventId !== undefined) equal(event.error.event_id, eventId, 'error.event_id');
    if (param !== undefined) equal(event.error.param, param, 'error.param');
    return event;
  }

  async quiet(ms = 300) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length) throw new Mismatch(`unexpected event: ${short(this.queue[0])}`);
    if (this.failure) throw this.failure;
  }

  send(event) {
    this.rt.send(event);
  }

  async userText(text, previousItemId) {
    const event = { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } };
    if (previousItemId !== undefined) event.previous_item_id = previousItemId;
    this.send(event);
    let created;
    if (this.dialect === 'ga') {
      const [added, done] = await this.expect('conversation.item.added', 'conversation.item.done');
      equal(done.item.id, added.item.id, 'conversation.item.done item.id');
      equal(done.previous_item_id, added.previous_item_id, 'conversation.item.done previous_item_id');
      created = added;
    } else {
      [created] = await this.expect('conversation.item.created');
    }
    equal([created.item.type, created.item.role, created.item.content[0].text], ['message', 'user', text], 'user item');
    check(!!created.item.id, 'the new item has no id');
    return created;
  }
}

function shape(events, collapse) {
  const out = [];
  for (const event of events) {
    if (collapse.has(event.type)) {
      if (out[out.length - 1] !== '*') out.push('*');
    } else {
      out.push(event.type);
    }
  }
  return out;
}

function responseShape(c, audio) {
  const ga = c.dialect === 'ga';
  return [
    'response.created',
    'response.output_item.added',
    c.n('item_created'),
    'response.content_part.added',
    '*',
    ...(audio ? [c.n('audio_done'), c.n('transcript_done')] : [c.n('text_done')]),
    'response.content_part.done',
    ...(ga ? ['conversation.item.done'] : []),
    'response.output_item.done',
    'response.done',
  ];
}

/** A completed message response: exact sequence, ids, text, audio, usage. */
function checkResponse(c, events, reply, audio, previousItemId) {
  const deltas = new Set(audio ? [c.n('transcript_delta'), c.n('audio_delta')] : [c.n('text_delta')]);
  equal(shape(events, deltas), responseShape(c, audio), 'response event sequence');
  const [created, added, convAdded, partAdded] = events;
  const responseId = created.response.id;
  check(!!responseId, 'response.created has no response.id');
  equal([created.response.status, created.response.object], ['in_progress', 'realtime.response'], 'response.created');
  const itemId = added.item.id;
  equal([added.item.role, added.item.status, added.output_index], ['assistant', 'in_progress', 0], 'output_item.added');
  equal(convAdded.item.id, itemId, `${c.n('item_created')} item.id`);
  if (previousItemId !== undefined) equal(convAdded.previous_item_id, previousItemId, `${c.n('item_created')} previous_item_id`);
  for (const event of events.slice(1)) {
    if (event.response_id != null) equal(event.response_id, responseId, `${event.type} response_id`);
    if (event.item_id != null) equal(event.item_id, itemId, `${event.type} item_id`);
  }
  equal(partAdded.part.type, audio ? 'audio' : 'text', 'content_part.added part.type');
  let text;
  let doneText;
  let pcm = 0;
  if (audio) {
    text = events.filter((e) => e.type === c.n('transcript_delta')).map((e) => e.delta).join('');
    doneText = events.find((e) => e.type === c.n('transcript_done')).transcript;
    pcm = events.filter((e) => e.type === c.n('audio_delta')).reduce((n, e) => n + b64len(e.delta), 0);
    check(pcm > 0 && pcm % 2 === 0, `audio deltas hold ${pcm} bytes of pcm16`);
    equal(events.find((e) => deltas.has(e.type)).type, c.n('transcript_delta'), 'first delta (speech follows its text)');
  } else {
    text = events.filter((e) => e.type === c.n('text_delta')).map((e) => e.delta).join('');
    doneText = events.find((e) => e.type === c.n('text_done')).text;
  }
  equal(text, reply, 'concatenated deltas');
  equal(doneText, reply, 'done text');
  const partDone = events.find((e) => e.type === 'response.content_part.done').part;
  equal(audio ? partDone.transcript : partDone.text, reply, 'content_part.done part');
  equal(events.find((e) => e.type === 'response.output_item.done').item.status, 'completed', 'output_item.done status');
  const done = events[events.length - 1].response;
  equal([done.id, done.status, done.output.length], [responseId, 'completed', 1], 'response.done');
  const out = done.output[0];
  equal([out.id, out.status], [itemId, 'completed'], 'response.done output[0]');
  const part = out.content[0];
  if (audio) {
    equal([part.type, part.transcript], [c.n('audio_part'), reply], 'response.done output[0].content[0]');
    check(part.audio == null, 'response.done must not carry audio bytes');
  } else {
    equal([part.type, part.text], [c.n('text_part'), reply], 'response.done output[0].content[0]');
  }
  const modalities = c.dialect === 'ga' ? done.output_modalities : [...(done.modalities ?? [])].sort();
  equal(modalities, audio ? (c.dialect === 'ga' ? ['audio'] : ['audio', 'text']) : ['text'], 'response.done modalities');
  check(done.usage && done.usage.output_tokens > 0, `response.done usage: ${JSON.stringify(done.usage)}`);
  equal(done.usage.total_tokens, done.usage.input_tokens + done.usage.output_tokens, 'usage.total_tokens');
  return { response_id: responseId, item_id: itemId, audio_bytes: pcm, events: events.length };
}

// ---- session configurations ---------------------------------------------------------------------------------------

function sessionConfig(dialect, { audio, vad, transcription = true, instructions, tools, toolChoice }) {
  const turn = vad
    ? { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500, create_response: true, interrupt_response: true }
    : null;
  const stt = transcription ? { model: 'whisper-1' } : null;
  const session = dialect === 'ga'
    ? {
      type: 'realtime',
      output_modalities: audio ? ['audio'] : ['text'],
      audio: {
        input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: stt, turn_detection: turn },
        output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' },
      },
    }
    : {
      modalities: audio ? ['text', 'audio'] : ['text'],
      input_audio_format: 'pcm16',
      output_audio_format: 'pcm16',
      input_audio_transcription: stt,
      turn_detection: turn,
      voice: 'alloy',
    };
  if (instructions !== undefined) session.instructions = instructions;
  if (tools !== undefined) session.tools = tools;
  if (toolChoice !== undefined) session.tool_choice = toolChoice;
  return session;
}

function checkSession(c, session, { audio, vad, transcription = true }) {
  check(typeof session.id === 'string' && session.id.startsWith('sess_'), `session.id ${session.id}`);
  let turn;
  let stt;
  if (c.dialect === 'ga') {
    equal(session.type, 'realtime', 'session.type');
    equal(session.output_modalities, audio ? ['audio'] : ['text'], 'session.output_modalities');
    equal(session.audio.input.format, { type: 'audio/pcm', rate: 24000 }, 'session.audio.input.format');
    turn = session.audio.input.turn_detection;
    stt = session.audio.input.transcription;
  } else {
    equal(session.object, 'realtime.session', 'session.object');
    equal([...session.modalities].sort(), audio ? ['audio', 'text'] : ['text'], 'session.modalities');
    equal(session.input_audio_format, 'pcm16', 'session.input_audio_format');
    turn = session.turn_detection;
    stt = session.input_audio_transcription;
  }
  if (vad) {
    check(turn != null, 'session turn_detection is null, expected server_vad');
    equal([turn.type, turn.silence_duration_ms, turn.prefix_padding_ms], ['server_vad', 500, 300], 'turn_detection');
  } else {
    equal(turn, null, 'session turn_detection');
  }
  if (transcription) check(stt != null && stt.model === 'whisper-1', `session transcription: ${JSON.stringify(stt)}`);
  else equal(stt, null, 'session transcription');
}

// ---- scenarios ----------------------------------------------------------------------------------------------------

class Run {
  constructor(args, sdk) {
    this.args = args;
    this.sdk = sdk;
    this.dialect = args.dialect;
    const script = JSON.parse(fs.readFileSync(args.voiceScript, 'utf8'));
    const texts = script.replies.filter((r) => 'text' in r).map((r) => r.text);
    const calls = script.replies.filter((r) => 'tool_call' in r).map((r) => r.tool_call);
    check(texts.length === 1 && calls.length === 1, 'the voice script needs one text reply and one tool call');
    [this.reply] = texts;
    [this.tool] = calls;
    [this.transcript] = script.transcripts;
    this.hello = resample16kTo24k(readWav16k(path.join(args.fixtures, 'hello_16k.wav')));
    this.ca = fs.readFileSync(args.ca);
    this.client = new sdk.OpenAI({ apiKey: process.env.OPENAI_API_KEY, baseURL: args.baseUrl });
    this.model = this.dialect === 'ga' ? 'gpt-realtime' : 'gpt-4o-realtime-preview';
  }

  async open() {
    const rt = new this.sdk.OpenAIRealtimeWS({ model: this.model, options: { ca: this.ca } }, this.client);
    const c = new Conversation(rt, this.dialect);
    await c.opened;
    const [created] = await c.expect('session.created');
    equal(created.session.model, this.model, 'session.created session.model');
    checkSession(c, created.session, { audio: true, vad: true, transcription: false });
    return { c, session: created.session };
  }

  async configure(c, options) {
    c.send({ type: 'session.update', session: sessionConfig(this.dialect, options) });
    const [updated] = await c.expect('session.updated');
    checkSession(c, updated.session, options);
    return updated.session;
  }

  async text(c) {
    const session = await this.configure(c, { audio: false, vad: false, instructions: 'Be brief.' });
    equal(session.instructions, 'Be brief.', 'session.updated instructions');
    const bad = this.dialect === 'ga' ? { type: 'realtime', audio: { output: { speed: 99 } } } : { temperature: 9.0 };
    c.send({ type: 'session.update', event_id: 'evt_bad_update', session: bad });
    await c.error('invalid_value', 'evt_bad_update', this.dialect === 'ga' ? 'session.audio.output.speed' : 'session.temperature');
    const partial = this.dialect === 'ga' ? { type: 'realtime', instructions: 'Be very brief.' } : { instructions: 'Be very brief.' };
    c.send({ type: 'session.update', session: partial });
    const [updated] = await c.expect('session.updated');
    equal(updated.session.instructions, 'Be very brief.', 'session.updated instructions');
    checkSession(c, updated.session, { audio: false, vad: false });

    const user = await c.userText('Hi there!');
    equal(user.previous_item_id, null, 'first item previous_item_id');
    c.send({ type: 'response.create' });
    const facts = checkResponse(c, await c.until('response.done'), this.reply, false, user.item.id);
    const second = await c.userText('And again?');
    equal(second.previous_item_id, facts.item_id, 'second user item previous_item_id');
    c.send({ type: 'response.create' });
    checkResponse(c, await c.until('response.done'), this.reply, false, second.item.id);
    await c.quiet();
    return facts;
  }

  async vad(c) {
    await this.configure(c, { audio: true, vad: true });
    for (const chunk of chunks(this.hello)) c.send({ type: 'input_audio_buffer.append', audio: chunk });
    const events = await c.until('response.done');
    const ga = this.dialect === 'ga';
    const turn = [
      'input_audio_buffer.speech_started',
      'input_audio_buffer.speech_stopped',
      'input_audio_buffer.committed',
      c.n('item_created'),
      ...(ga ? ['conversation.item.done'] : []),
      'conversation.item.input_audio_transcription.completed',
    ];
    equal(events.slice(0, turn.length).map((e) => e.type), turn, 'server-VAD turn sequence');
    const [started, stopped, committed, item] = events;
    const transcribed = events[turn.length - 1];
    const userId = started.item_id;
    check(!!userId, 'speech_started has no item_id');
    equal([stopped.item_id, committed.item_id, item.item.id, transcribed.item_id], [userId, userId, userId, userId], 'turn item ids');
    equal(committed.previous_item_id, null, 'committed previous_item_id');
    equal([item.item.role, item.item.content[0].type], ['user', 'input_audio'], 'user item');
    equal([transcribed.transcript, transcribed.content_index], [this.transcript, 0], 'input transcription');
    const start = started.audio_start_ms;
    const end = stopped.audio_end_ms;
    check(start >= 100 && start <= 450, `audio_start_ms ${start} (speech starts ~500 ms in, minus 300 ms padding)`);
    check(end >= 2000 && end <= 2900, `audio_end_ms ${end} (speech ends ~2 s in, plus 500 ms silence)`);
    const facts = checkResponse(c, events.slice(turn.length), this.reply, true, userId);
    c.send({ type: 'conversation.item.retrieve', item_id: userId });
    const [retrieved] = await c.expect('conversation.item.retrieved');
    equal([retrieved.item.id, retrieved.item.content[0].transcript], [userId, this.transcript], 'retrieved user item');
    const kept = b64len(retrieved.item.content[0].audio);
    check(Math.abs(kept - (end - start) * BYTES_PER_MS) <= BYTES_PER_MS, `user item holds ${kept} bytes of audio`);
    await c.quiet();
    return { ...facts, audio_start_ms: start, audio_end_ms: end };
  }

  async push_to_talk(c) {
    await this.configure(c, { audio: false, vad: false });
    c.send({ type: 'input_audio_buffer.commit', event_id: 'evt_empty' });
    await c.error('input_audio_buffer_commit_empty', 'evt_empty');
    for (const chunk of chunks(silence(300))) c.send({ type: 'input_audio_buffer.append', audio: chunk });
    c.send({ type: 'input_audio_buffer.clear' });
    await c.expect('input_audio_buffer.cleared');
    for (const chunk of chunks(this.hello)) c.send({ type: 'input_audio_buffer.append', audio: chunk });
    await c.quiet();
    c.send({ type: 'input_audio_buffer.commit' });
    const ga = this.dialect === 'ga';
    const events = await c.expect(
      'input_audio_buffer.committed',
      c.n('item_created'),
      ...(ga ? ['conversation.item.done'] : []),
      'conversation.item.input_audio_transcription.completed',
    );
    const [committed, item] = events;
    const transcribed = events[events.length - 1];
    equal([item.item.id, transcribed.item_id], [committed.item_id, committed.item_id], 'committed item ids');
    equal([transcribed.transcript, item.item.content[0].type], [this.transcript, 'input_audio'], 'committed turn');
    await c.quiet();
    c.send({ type: 'response.create' });
    const facts = checkResponse(c, await c.until('response.done'), this.reply, false, committed.item_id);
    await c.quiet();
    return facts;
  }

  async barge_in(c) {
    await this.configure(c, { audio: true, vad: true });
    const user = await c.userText('Tell me something long.');
    c.send({ type: 'response.create' });
    const before = await c.until(c.n('audio_delta'));
    equal(before.slice(0, 4).map((e) => e.type),
      ['response.created', 'response.output_item.added', c.n('item_created'), 'response.content_part.added'], 'response start');
    const responseId = before[0].response.id;
    const assistantId = before[1].item.id;
    for (const chunk of chunks(this.hello.subarray(0, 2200 * BYTES_PER_MS))) {
      c.send({ type: 'input_audio_buffer.append', audio: chunk });
    }
    const events = before.concat(await c.until('response.done'));
    const kinds = events.map((e) => e.type);
    const at = kinds.indexOf('input_audio_buffer.speech_started');
    check(at >= 0, `no speech_started before response.done: ${JSON.stringify(kinds)}`);
    const ga = this.dialect === 'ga';
    equal(kinds.slice(at), ['input_audio_buffer.speech_started', ...(ga ? ['conversation.item.done'] : []),
      'response.output_item.done', 'response.done'], 'barge-in: nothing but the item\'s end and response.done after speech_started');
    const deltas = new Set([c.n('transcript_delta'), c.n('audio_delta')]);
    check(kinds.slice(4, at).every((k) => deltas.has(k)), `only deltas before the barge-in: ${JSON.stringify(kinds.slice(4, at))}`);
    const done = events[events.length - 1].response;
    equal([done.id, done.status, done.status_details?.reason], [responseId, 'cancelled', 'turn_detected'], 'barge-in response.done');
    equal([done.output[0].id, done.output[0].status], [assistantId, 'incomplete'], 'cancelled output item');
    const heard = events.filter((e) => e.type === c.n('transcript_delta')).map((e) => e.delta).join('');
    check(heard.length < this.reply.length, `the reply was cut, yet its whole text arrived: ${heard}`);
    const receivedMs = Math.floor(events.filter((e) => e.type === c.n('audio_delta')).reduce((n, e) => n + b64len(e.delta), 0) / BYTES_PER_MS);
    check(receivedMs >= 2, `${receivedMs} ms of audio before the barge-in`);
    const speechItem = events[at].item_id;

    const playedMs = Math.floor(receivedMs / 2);
    c.send({ type: 'conversation.item.truncate', item_id: assistantId, content_index: 0, audio_end_ms: playedMs });
    const [truncated] = await c.expect('conversation.item.truncated');
    equal([truncated.item_id, truncated.content_index, truncated.audio_end_ms], [assistantId, 0, playedMs], 'conversation.item.truncated');
    c.send({ type: 'conversation.item.retrieve', item_id: assistantId });
    const [retrieved] = await c.expect('conversation.item.retrieved');
    const part = retrieved.item.content[0];
    equal(b64len(part.audio), playedMs * BYTES_PER_MS, 'truncated audio bytes');
    check(this.reply.startsWith(part.transcript ?? ''), `truncated transcript ${part.transcript}`);
    c.send({ type: 'conversation.item.truncate', event_id: 'evt_long', item_id: assistantId, content_index: 0, audio_end_ms: receivedMs + 10_000 });
    await c.error('invalid_value', 'evt_long', 'audio_end_ms');

    for (const chunk of chunks(silence(1000))) c.send({ type: 'input_audio_buffer.append', audio: chunk });
    const next = await c.until('response.done');
    const turn = [
      'input_audio_buffer.speech_stopped',
      'input_audio_buffer.committed',
      c.n('item_created'),
      ...(ga ? ['conversation.item.done'] : []),
      'conversation.item.input_audio_transcription.completed',
    ];
    equal(next.slice(0, turn.length).map((e) => e.type), turn, 'the interrupting turn');
    equal([next[0].item_id, next[1].item_id, next[1].previous_item_id], [speechItem, speechItem, assistantId], 'interrupting turn ids');
    // Same fixture, same session timeline as the server-VAD scenario: the turn spans the utterance.
    const [start, end] = [events[at].audio_start_ms, next[0].audio_end_ms];
    check(start >= 100 && start <= 450 && end >= 2000 && end <= 2900, `interrupting turn ${start}–${end} ms`);
    checkResponse(c, next.slice(turn.length), this.reply, true, speechItem);
    await c.quiet();
    return { cut_after_ms: receivedMs, truncated_at_ms: playedMs, user_item: user.item.id };
  }

  async function_call(c) {
    const { name } = this.tool;
    const tool = {
      type: 'function',
      name,
      description: 'Current weather for a city.',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    };
    const session = await this.configure(c, { audio: false, vad: false, tools: [tool], toolChoice: 'required' });
    equal([session.tools.map((t) => t.name), session.tool_choice], [[name], 'required'], 'session tools');
    const user = await c.userText('What is the weather in Oslo?');
    c.send({ type: 'response.create' });
    const events = await c.until('response.done');
    const ga = this.dialect === 'ga';
    const argsDelta = 'response.function_call_arguments.delta';
    equal(shape(events, new Set([argsDelta])), [
      'response.created', 'response.output_item.added', c.n('item_created'), '*',
      'response.function_call_arguments.done', ...(ga ? ['conversation.item.done'] : []),
      'response.output_item.done', 'response.done'], 'function call response sequence');
    const added = events[1];
    equal([added.item.type, added.item.name], ['function_call', name], 'output_item.added item');
    const callId = added.item.call_id;
    check(!!callId, 'the function_call item has no call_id');
    equal(events[2].previous_item_id, user.item.id, 'function_call item previous_item_id');
    const args = events.filter((e) => e.type === argsDelta).map((e) => e.delta).join('');
    const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done');
    for (const e of events.filter((x) => x.type === argsDelta || x.type === argsDone.type)) {
      equal([e.call_id, e.item_id, e.output_index], [callId, added.item.id, 0], `${e.type} ids`);
    }
    equal(argsDone.arguments, args, 'function_call_arguments.done arguments');
    equal(JSON.parse(args), this.tool.arguments, 'function arguments');
    if (ga) equal(argsDone.name, name, 'function_call_arguments.done name');
    const done = events[events.length - 1].response;
    equal(done.status, 'completed', 'function call response status');
    const out = done.output[0];
    equal([out.type, out.call_id, out.name, out.arguments], ['function_call', callId, name, args], 'response.done output');

    c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output: JSON.stringify({ sky: 'clear' }) } });
    const [result] = ga ? await c.expect('conversation.item.added', 'conversation.item.done') : await c.expect('conversation.item.created');
    equal([result.item.type, result.item.call_id, result.previous_item_id], ['function_call_output', callId, added.item.id], 'function_call_output item');
    c.send({ type: 'response.create', response: { tool_choice: 'none' } });
    const facts = checkResponse(c, await c.until('response.done'), this.reply, false, result.item.id);
    await c.quiet();
    return { call_id: callId, arguments: args, answer_item: facts.item_id };
  }

  async items(c) {
    await this.configure(c, { audio: false, vad: false });
    const first = await c.userText('first');
    const second = await c.userText('second');
    equal(second.previous_item_id, first.item.id, 'second previous_item_id');
    const between = await c.userText('between', first.item.id);
    equal(between.previous_item_id, first.item.id, 'inserted item previous_item_id');
    c.send({ type: 'conversation.item.retrieve', item_id: between.item.id });
    const [retrieved] = await c.expect('conversation.item.retrieved');
    equal([retrieved.item.id, retrieved.item.content[0].text], [between.item.id, 'between'], 'retrieved item');
    c.send({ type: 'conversation.item.delete', item_id: between.item.id });
    const [deleted] = await c.expect('conversation.item.deleted');
    equal(deleted.item_id, between.item.id, 'conversation.item.deleted item_id');
    c.send({ type: 'conversation.item.delete', event_id: 'evt_del_again', item_id: between.item.id });
    await c.error('item_not_found', 'evt_del_again', 'item_id');
    c.send({ type: 'conversation.item.retrieve', event_id: 'evt_get_gone', item_id: between.item.id });
    await c.error('item_not_found', 'evt_get_gone', 'item_id');
    c.send({ type: 'conversation.item.truncate', event_id: 'evt_trunc_text', item_id: first.item.id, content_index: 0, audio_end_ms: 0 });
    await c.error('invalid_value', 'evt_trunc_text', 'content_index');
    c.send({ type: 'conversation.item.truncate', event_id: 'evt_trunc_missing', item_id: 'item_missing', content_index: 0, audio_end_ms: 0 });
    await c.error('item_not_found', 'evt_trunc_missing', 'item_id');
    c.send({ type: 'conversation.item.create', event_id: 'evt_prev_missing', previous_item_id: 'item_missing',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'x' }] } });
    await c.error('item_not_found', 'evt_prev_missing', 'previous_item_id');
    c.send({ type: 'response.create' });
    const facts = checkResponse(c, await c.until('response.done'), this.reply, false, second.item.id);
    await c.quiet();
    return { deleted: between.item.id, answer_item: facts.item_id };
  }

  async bad_input(c) {
    await this.configure(c, { audio: false, vad: false });
    c.rt.socket.send('{not json');
    await c.error('invalid_json');
    c.send({ type: 'no.such.event', event_id: 'evt_unknown' });
    await c.error('unknown_event', 'evt_unknown', 'type');
    c.rt.socket.send(Buffer.from([0, 1, 2, 3]));
    await c.error('invalid_frame');
    c.send({ type: 'input_audio_buffer.append', event_id: 'evt_b64', audio: 'not base64!' });
    await c.error('invalid_value', 'evt_b64', 'audio');
    c.send({ type: 'conversation.item.delete', event_id: 'evt_no_id' });
    await c.error('missing_required_parameter', 'evt_no_id', 'item_id');
    const started = Date.now();
    c.send({ type: 'input_audio_buffer.append', event_id: 'evt_oversize', audio: Buffer.alloc(MAX_INPUT_AUDIO_BYTES + BYTES_PER_MS).toString('base64') });
    await c.error('input_audio_buffer_full', 'evt_oversize');
    const oversizeS = (Date.now() - started) / 1000;
    c.send({ type: 'response.cancel', event_id: 'evt_cancel_none' });
    await c.error('response_cancel_not_active', 'evt_cancel_none');
    const user = await c.userText('Are you still there?');
    c.send({ type: 'response.create' });
    const facts = checkResponse(c, await c.until('response.done'), this.reply, false, user.item.id);
    await c.quiet();
    return { oversize_round_trip_s: oversizeS, answer_item: facts.item_id };
  }
}

const SCENARIOS = ['text', 'vad', 'push_to_talk', 'barge_in', 'function_call', 'items', 'bad_input'];

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const chosen = args.scenarios ? args.scenarios.split(',').filter(Boolean) : SCENARIOS;
  const unknown = chosen.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length) throw new Error(`unknown scenarios ${unknown}; known: ${SCENARIOS}`);
  const sdk = await loadSdk(args.dialect);
  const run = new Run(args, sdk);
  const summary = { sdk: 'openai-node', version: sdk.version, dialect: args.dialect, transport: 'wss', scenarios: {} };
  for (const name of chosen) {
    const started = Date.now();
    let c;
    try {
      const opened = await run.open();
      c = opened.c;
      const facts = await run[name](c);
      // Close like an app does; the server answers with 1000 at once.
      c.failure = null;
      c.fail = () => {};
      const closing = Date.now();
      c.rt.close();
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), 5000); });
      const closed = await Promise.race([c.closedAt, timeout]);
      clearTimeout(timer);
      check(closed !== null, 'the server did not answer the close within 5 s');
      equal(closed.code, 1000, 'close code');
      summary.scenarios[name] = {
        session: opened.session.id,
        events: c.count,
        seconds: (Date.now() - started) / 1000,
        close_ms: Date.now() - closing,
        ...facts,
      };
    } catch (err) {
      try { c?.rt.socket.terminate(); } catch { /* already gone */ }
      const message = err instanceof Mismatch ? err.message : `${err?.name}: ${err?.message}\n${err?.stack}`;
      process.stderr.write(`FAIL node ${args.dialect} scenario ${name}: ${message}\n`);
      process.stdout.write(`${JSON.stringify({ ...summary, failed: name, error: message })}\n`);
      process.exit(1);
    }
  }
  summary.ok = true;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((err) => {
  process.stderr.write(`FAIL node: ${err?.stack ?? err}\n`);
  process.exit(1);
});
