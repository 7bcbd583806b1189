// SPDX-License-Identifier: MPL-2.0
// The runner of core::script, run by the system Node.js (18 or newer) as `node -e <this>`,
// embedded into skit at build time. It speaks length-prefixed frames with the worker: it reads
// fd 3 and writes fd 4; every frame is [u32 little-endian payload length][u8 type][payload],
// the payload UTF-8 JSON (or a bare string for packets). The process has no network, no files
// and no way to spawn (an OS sandbox set by the worker before exec); the vm context below only
// keeps scripts away from Node's own API (no require, no process, no Buffer).
'use strict';
const fs = require('fs');
const vm = require('vm');

const IN_FD = 3;
const OUT_FD = 4;
// Frame types; keep in sync with script_process.hpp.
const F_INIT = 1, F_PACKET = 2, F_FETCH_RESULT = 3, F_TUNE = 4;
const F_READY = 10, F_RESULT = 11, F_LOG = 12, F_FETCH = 13, F_TELEMETRY = 14;

const head = Buffer.alloc(5);
function readFully(buf, n) {
  let off = 0;
  while (off < n) {
    const got = fs.readSync(IN_FD, buf, off, n - off, null);
    if (got === 0) process.exit(0);  // the worker went away
    off += got;
  }
}
function readFrame() {
  readFully(head, 5);
  const len = head.readUInt32LE(0);
  const body = Buffer.allocUnsafe(len);
  readFully(body, len);
  return { type: head[4], text: body.toString('utf8') };
}
function writeFrame(type, text) {
  const body = Buffer.from(text, 'utf8');
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame[4] = type;
  body.copy(frame, 5);
  let off = 0;
  while (off < frame.length) off += fs.writeSync(OUT_FD, frame, off, frame.length - off);
}

// The one door from the context to the host: strings in, strings out, so that no object of
// this realm (whose constructors lead to `process`) is ever handed to a script.
function host(kind, arg) {
  switch (kind) {
    case 'log': writeFrame(F_LOG, arg); return undefined;
    case 'telemetry': writeFrame(F_TELEMETRY, arg); return 'true';
    case 'fetch': {
      writeFrame(F_FETCH, arg);
      for (;;) {
        const f = readFrame();
        if (f.type === F_FETCH_RESULT) return f.text;
      }
    }
    default: return undefined;
  }
}

// Installed inside the context: console, fetch, telemetry and the per-packet entry point.
const PRELUDE = `(function (host) {
  'use strict';
  const str = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return v.stack ? String(v.stack) : String(v);
    try { const j = JSON.stringify(v); return j === undefined ? String(v) : j; } catch (e) { return String(v); }
  };
  const logger = (level) => function () {
    host('log', JSON.stringify({ level, msg: Array.prototype.map.call(arguments, str).join(' ') }));
  };
  Object.defineProperty(globalThis, 'console', { value: Object.freeze({
    log: logger('info'), info: logger('info'), debug: logger('debug'),
    warn: logger('warn'), error: logger('error') }) });
  Object.defineProperty(globalThis, 'fetch', { value: function fetch(url, options) {
    const o = options || {};
    const req = { url: String(url), method: o.method === undefined ? 'GET' : String(o.method),
                  headers: {}, body: null };
    if (o.headers) for (const k of Object.keys(o.headers)) req.headers[k] = String(o.headers[k]);
    if (o.body !== undefined && o.body !== null)
      req.body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    const answer = JSON.parse(host('fetch', JSON.stringify(req)));
    if (!answer.ok) throw new Error(answer.error);
    return answer.body;
  } });
  let spanSeq = 0;
  const spans = new Map();
  const emit = (type, data) => {
    if (typeof type !== 'string' || type === '') return false;
    const d = (data !== null && typeof data === 'object') ? data : (data === undefined ? {} : { value: data });
    return host('telemetry', JSON.stringify({ event_type: type, data: d })) === 'true';
  };
  Object.defineProperty(globalThis, 'telemetry', { value: Object.freeze({
    emit,
    startSpan(type, data) {
      const id = 'span-' + (++spanSeq);
      spans.set(id, { type: String(type), started: Date.now() });
      emit(String(type) + '.start', data);
      return id;
    },
    endSpan(id, data) {
      const span = spans.get(id);
      if (!span) return false;
      spans.delete(id);
      const d = Object.assign({}, (data !== null && typeof data === 'object') ? data : {},
                              { latency_ms: Date.now() - span.started });
      return emit(span.type, d);
    },
  }) });
  const fail = (e) => (e && e.stack) ? String(e.stack) : String(e);
  const finish = (box, v) => {
    if (v === null) { box.state = 'drop'; return; }
    if (v === undefined) { box.state = 'error'; box.error = 'process() returned undefined (return the packet, or null to drop it)'; return; }
    box.state = 'out';
    box.out = JSON.stringify(v);
  };
  Object.defineProperty(globalThis, '__skit_call', { value: function (fn) {
    const box = { state: 'pending' };
    if (typeof fn !== 'function') { box.state = 'error'; box.error = 'process is not a function'; return box; }
    try {
      const v = fn(JSON.parse(globalThis.__skit_input));
      if (v !== null && typeof v === 'object' && typeof v.then === 'function') {
        v.then((r) => { try { finish(box, r); } catch (e) { box.state = 'error'; box.error = fail(e); } },
               (e) => { box.state = 'error'; box.error = fail(e); });
      } else {
        finish(box, v);
      }
    } catch (e) {
      box.state = 'error';
      box.error = fail(e);
    }
    return box;
  } });
})`;

const CALL = new vm.Script('__skit_call(typeof process === "function" ? process : undefined)',
                           { filename: 'skit-call' });

function errorText(e) {
  if (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return null;
  return (e && e.stack) ? String(e.stack) : String(e);
}

let context = null;
let timeoutMs = 100;

function init(text) {
  const req = JSON.parse(text);
  timeoutMs = req.timeout_ms;
  context = vm.createContext(Object.create(null), {
    name: req.name,
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
  vm.runInContext(PRELUDE, context, { filename: 'skit-prelude' })(host);
  let script;
  try {
    script = new vm.Script(req.script, { filename: req.name });
  } catch (e) {
    return { ok: false, error: 'syntax error: ' + String(e && e.message) + where(e) };
  }
  try {
    script.runInContext(context, { timeout: req.timeout_ms * 10 });
  } catch (e) {
    const t = errorText(e);
    return { ok: false, error: t === null
      ? 'the top-level code ran longer than ' + (req.timeout_ms * 10) + ' ms'
      : 'the top-level code threw: ' + t };
  }
  if (vm.runInContext('typeof process', context) !== 'function')
    return { ok: false, error: 'the script defines no process(packet) function' };
  return { ok: true };
}

function where(e) {
  // V8 puts "file:line" and a caret picture first in the stack of a SyntaxError.
  const first = e && e.stack ? String(e.stack).split('\n')[0] : '';
  return /:\d+$/.test(first) ? ' (at ' + first + ')' : '';
}

function runPacket(text) {
  context.__skit_input = text;
  let box;
  try {
    box = CALL.runInContext(context, { timeout: timeoutMs });
  } catch (e) {
    const t = errorText(e);
    return t === null ? { state: 'timeout' } : { state: 'error', error: t };
  }
  if (box.state === 'pending')
    return { state: 'error', error: 'process() returned a promise that did not settle (only fetch and other script code may be awaited)' };
  return { state: box.state, out: box.out, error: box.error };
}

for (;;) {
  const f = readFrame();
  if (f.type === F_INIT) {
    writeFrame(F_READY, JSON.stringify(init(f.text)));
  } else if (f.type === F_PACKET) {
    writeFrame(F_RESULT, JSON.stringify(runPacket(f.text)));
  } else if (f.type === F_TUNE) {
    const t = JSON.parse(f.text);
    if (typeof t.timeout_ms === 'number') timeoutMs = t.timeout_ms;
  }
}
