// WebRTC end to end: Chromium's fake microphone (a gated 440 Hz tone from a WAV file)
// publishes over WHIP into a live session whose audio::gain is 0.5 (then 1.0), the page plays
// the WHEP output, and WebAudio records both the microphone and the received audio on one
// clock: the level difference must be -6 dB within 1 dB, and the delay from the microphone to
// the playback is measured per tone burst (reported; target p50 < 150 ms on loopback).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { assert, chromiumPath, median, repoRoot, screenshot, waitFor } from './harness.mjs';
import { OPERATOR, VIEWER, authConfig } from './auth.mjs';

const kBurstMs = 400;
const kPeriodMs = 1000;

/** The fake microphone: 440 Hz at amplitude 1/32 (lavfi's sine is 1/8, then 0.25), on for
 * 400 ms of every second: an RMS of -33.1 dBFS while on. */
export const kToneOnDbfs = 20 * Math.log10(0.125 * 0.25 / Math.SQRT2);
export function makeGatedToneWav() {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'skit-webrtc-')), 'tone.wav');
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    'sine=frequency=440:sample_rate=48000:duration=20', '-af',
    `volume=0.25,volume='if(lt(mod(t\\,${kPeriodMs / 1000})\\,${kBurstMs / 1000})\\,1\\,0)':eval=frame`,
    '-ac', '1', '-c:a', 'pcm_s16le', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg could not make ${file}: ${r.stderr}`);
  return file;
}

export async function launchWebRtcBrowser(wav) {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

/** The WebRTC gain sample, its WebRTC nodes on loopback and the gain as given. */
export function gainSessionYaml(gain) {
  const text = readFileSync(path.join(repoRoot, 'samples/pipelines/dynamic/webrtc_gain.yml'), 'utf8');
  return text
    .replace(/kind: transport::webrtc::(whip|whep)\n/g, (m) => `${m}    params:\n      ice_local_addresses: "127.0.0.1"\n`)
    .replace(/gain: 0\.5/, `gain: ${gain}`);
}

export async function createSession(server, name, yaml) {
  const r = await server.api('/api/v1/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, yaml }) });
  const text = await r.text();
  assert(r.status === 200, `create session: ${r.status} ${text}`);
  return JSON.parse(text).session_id;
}

/**
 * In the page: publish the microphone to `whip`, play `whep`, and record for `seconds` the RMS
 * of 5 ms windows of both (channel 0: microphone, 1: playback) on one AudioContext clock.
 * With `whip` null nothing is published (a viewer only): channel 0 stays silent.
 */
export async function publishPlayAndRecord(page, whip, whep, seconds, whileLive) {
  const recording = page.evaluate(async ({ whip, whep, seconds }) => {
    const iceComplete = (pc) => new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    });
    const negotiate = async (pc, url) => {
      await pc.setLocalDescription(await pc.createOffer());
      await iceComplete(pc);
      const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      const text = await r.text();
      if (r.status !== 201) throw new Error(`${url}: ${r.status} ${text}`);
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      return { location: r.headers.get('Location'), contentType: r.headers.get('Content-Type') };
    };
    const mic = whip ? await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } }) : null;
    const pub = whip ? new RTCPeerConnection() : null;
    pub?.addTransceiver(mic.getAudioTracks()[0], { direction: 'sendonly' });
    const published = pub ? await negotiate(pub, whip) : null;
    const view = new RTCPeerConnection();
    view.addTransceiver('audio', { direction: 'recvonly' });
    const remote = new Promise((resolve) => { view.ontrack = (e) => resolve(e.streams[0] ?? new MediaStream([e.track])); });
    const played = await negotiate(view, whep);
    const stream = await remote;
    // Chromium only feeds a remote WebRTC track to WebAudio while a media element plays it.
    const el = new Audio();
    el.muted = true;
    el.srcObject = stream;
    await el.play();
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.resume();
    const merger = ctx.createChannelMerger(2);
    if (mic) ctx.createMediaStreamSource(mic).connect(merger, 0, 0);
    ctx.createMediaStreamSource(stream).connect(merger, 0, 1);
    const proc = ctx.createScriptProcessor(1024, 2, 2);
    const win = 240; // 5 ms
    const rms = [[], []];
    const acc = [[0, 0], [0, 0]];
    proc.onaudioprocess = (e) => {
      for (let ch = 0; ch < 2; ch += 1) {
        const d = e.inputBuffer.getChannelData(ch);
        for (let i = 0; i < d.length; i += 1) {
          acc[ch][0] += d[i] * d[i];
          acc[ch][1] += 1;
          if (acc[ch][1] === win) {
            rms[ch].push(Math.sqrt(acc[ch][0] / win));
            acc[ch] = [0, 0];
          }
        }
      }
    };
    merger.connect(proc);
    proc.connect(ctx.destination);
    const connected = () => (!pub || pub.connectionState === 'connected') && view.connectionState === 'connected';
    const t0 = performance.now();
    while (!connected() && performance.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
    const connectMs = performance.now() - t0;
    rms[0].length = 0;
    rms[1].length = 0;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    proc.disconnect();
    const states = { pub: pub?.connectionState, view: view.connectionState };
    // End the peers the WHIP/WHEP way, and check the server's answer.
    const deleted = [];
    for (const p of [published, played]) if (p) deleted.push((await fetch(p.location, { method: 'DELETE' })).status);
    pub?.close();
    view.close();
    mic?.getTracks().forEach((t) => t.stop());
    await ctx.close();
    return { rms, states, connectMs, deleted, published, played };
  }, { whip, whep, seconds });
  // While the page records (the peers connect within a second or two).
  await new Promise((r) => setTimeout(r, 2500));
  const live = await whileLive();
  return { ...(await recording), live };
}

/** The IP sockets (UDP and TCP, v4 and v6) a process holds, from /proc. */
export function inetSockets(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  let count = 0;
  for (const table of ['udp', 'udp6', 'tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) count += 1;
    }
  }
  return count;
}

const db = (x) => 20 * Math.log10(x + 1e-12);

/** Level of the tone while it is on: the median of the loudest third of the 5 ms windows. */
export function onLevelDb(rms) {
  const sorted = [...rms].sort((a, b) => b - a);
  return db(median(sorted.slice(0, Math.floor(sorted.length / 3))));
}

/** Times (ms) where the level rises through `thresholdDb` after at least 100 ms below it. */
function onsets(rms, thresholdDb) {
  const out = [];
  let below = 0;
  for (let i = 0; i < rms.length; i += 1) {
    if (db(rms[i]) < thresholdDb) {
      below += 1;
    } else {
      if (below >= 20) out.push(i * 5);
      below = 0;
    }
  }
  return out;
}

/** Per burst: the delay from the microphone's onset to the playback's next onset. */
export function latencies(rms) {
  const mic = onsets(rms[0], onLevelDb(rms[0]) - 12);
  const out = onsets(rms[1], onLevelDb(rms[1]) - 12);
  const delays = [];
  for (const t of mic) {
    const next = out.find((u) => u >= t && u - t < kPeriodMs - kBurstMs);
    if (next !== undefined) delays.push(next - t);
  }
  return delays;
}

async function measure(server, browser, gain) {
  const session = await createSession(server, `webrtc-${gain}`, gainSessionYaml(gain));
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${server.url}/`);
  // While media flows: the WHIP and WHEP workers hold UDP sockets, the codec and gain workers
  // hold none (their sandbox refuses socket(AF_INET)), each in its own process.
  const sockets = async () => {
    const p = await (await server.api(`/api/v1/sessions/${session}/pipeline`)).json();
    return Object.fromEntries(Object.entries(p.nodes).map(([id, n]) => [id, { pid: n.worker_pid, sockets: inetSockets(n.worker_pid) }]));
  };
  const r = await publishPlayAndRecord(page, `${server.url}/whip/${session}/mic`, `${server.url}/whep/${session}/out`, 6, sockets);
  await context.close();
  assert(problems.length === 0, `page errors: ${problems.join('; ')}`);
  assert(r.states.pub === 'connected' && r.states.view === 'connected', `peers not connected: ${JSON.stringify(r.states)}`);
  assert(r.published.location.startsWith(`/whip/${session}/mic/`) && r.published.contentType === 'application/sdp', `WHIP answer: ${JSON.stringify(r.published)}`);
  assert(r.deleted.every((s) => s === 200), `DELETE of the peers answered ${r.deleted}`);
  const w = r.live;
  assert(w.mic.sockets > 0 && w.out.sockets > 0, `WebRTC workers without IP sockets: ${JSON.stringify(w)}`);
  for (const id of ['decode', 'gain', 'encode']) {
    assert(w[id].sockets === 0, `${id}'s worker holds ${w[id].sockets} IP socket(s): ${JSON.stringify(w)}`);
    assert(w[id].pid !== w.mic.pid && w[id].pid !== w.out.pid, `${id} shares a worker with a WebRTC node: ${JSON.stringify(w)}`);
  }
  const mic = onLevelDb(r.rms[0]);
  const out = onLevelDb(r.rms[1]);
  const delays = latencies(r.rms);
  await server.api(`/api/v1/sessions/${session}`, { method: 'DELETE' });
  return { mic, out, delays, connectMs: r.connectMs };
}

export async function webrtcGainTest(server, browser) {
  const full = await measure(server, browser, 1.0);
  const half = await measure(server, browser, 0.5);
  const diff = half.out - full.out;
  const delays = [...full.delays, ...half.delays].sort((a, b) => a - b);
  const p50 = median(delays);
  const p90 = delays[Math.floor(delays.length * 0.9)];
  console.log(`     WHIP->gain->WHEP: mic ${full.mic.toFixed(1)} dBFS, played ${full.out.toFixed(1)} dB at gain 1.0, ` +
    `${half.out.toFixed(1)} dB at 0.5: ${diff.toFixed(2)} dB; connected in ${full.connectMs.toFixed(0)} ms; ` +
    `mic-to-playback latency p50 ${p50} ms, p90 ${p90} ms over ${delays.length} bursts`);
  assert(full.out > full.mic - 3, `at gain 1.0 the playback (${full.out.toFixed(1)} dB) should be near the microphone (${full.mic.toFixed(1)} dB)`);
  assert(Math.abs(diff + 6.02) <= 1, `gain 0.5 changed the played level by ${diff.toFixed(2)} dB, expected -6 dB within 1 dB`);
  assert(delays.length >= 6, `only ${delays.length} tone bursts were matched between microphone and playback`);
  // Generous for a loaded 2-core CI; the figure printed above is the one to read.
  assert(p50 < 400, `mic-to-playback latency p50 ${p50} ms`);
}

export const webrtcAuthConfig = authConfig;

/**
 * Refusals, with tokens on: no token is 401, a viewer may play but not publish (403), another
 * site's Origin is 403; a node of another kind or none is 404, a body that is not SDP 415, an
 * offer without Opus or garbage 400, PATCH (trickle ICE) 405, an unknown peer 404.
 */
export async function webrtcRefusalTest(server) {
  const as = (token, init = {}) => ({ ...init, headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` } });
  const api = server.api;
  server = { ...server, api: (p, init = {}) => api(p, as(OPERATOR, init)) };
  const r0 = await api('/api/v1/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert(r0.status === 401, `no token: ${r0.status}`);
  const session = await createSession(server, 'webrtc-refusals', gainSessionYaml(1.0));
  const sdpPost = (body) => ({ method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body });
  let q = await api(`/whip/${session}/mic`, sdpPost('v=0'));
  assert(q.status === 401, `WHIP without a token: ${q.status}`);
  q = await api(`/whip/${session}/mic`, as(VIEWER, sdpPost('v=0')));
  const denied = await q.text();
  assert(q.status === 403 && /publish/.test(denied), `WHIP as a viewer: ${q.status} ${denied}`);
  q = await api(`/whep/${session}/out`, as(VIEWER, sdpPost('garbage')));
  assert(q.status === 400, `WHEP as a viewer reaches the node (400 for garbage): ${q.status}`);
  q = await api(`/whip/${session}/mic`, as(OPERATOR, { ...sdpPost('v=0'), headers: { 'Content-Type': 'application/sdp', Origin: 'https://evil.example' } }));
  assert(q.status === 403, `WHIP from another site's page: ${q.status}`);
  const offer = 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n';
  const post = (p, body, type = 'application/sdp') => server.api(p, { method: 'POST', headers: { 'Content-Type': type }, body });
  let r = await post(`/whip/${session}/gain`, offer);
  const wrong = await r.text();
  assert(r.status === 404 && /not a WHIP endpoint/.test(wrong), `WHIP to a gain node: ${r.status} ${wrong}`);
  r = await post(`/whip/${session}/nope`, offer);
  assert(r.status === 404, `WHIP to a missing node: ${r.status}`);
  r = await post(`/whip/${session}/mic`, offer, 'text/plain');
  assert(r.status === 415, `WHIP with a text body: ${r.status}`);
  r = await post(`/whip/${session}/mic`, offer);
  const text = await r.text();
  assert(r.status === 400 && /no Opus audio/.test(text), `WHIP offer without Opus: ${r.status} ${text}`);
  r = await post(`/whip/${session}/mic`, 'garbage');
  assert(r.status === 400, `WHIP with garbage: ${r.status}`);
  r = await server.api(`/whip/${session}/mic/abc`, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' }, body: 'a=x' });
  assert(r.status === 405, `PATCH (trickle ICE): ${r.status}`);
  r = await server.api(`/whip/${session}/mic/abc`, { method: 'DELETE' });
  assert(r.status === 404, `DELETE of an unknown peer: ${r.status}`);
  // The session is still whole.
  r = await server.api(`/api/v1/sessions/${session}/pipeline`);
  assert(r.status === 200, `pipeline after the refusals: ${r.status}`);
  await server.api(`/api/v1/sessions/${session}`, { method: 'DELETE' });
}

export { screenshot, waitFor };

/** The Stream view: start the WebRTC gain sample, both directions connect, the output meter
 * moves, mute silences it, the Monitor link names the session, Stop destroys it. */
export async function streamViewTest(server, browser) {
  const { context, page, problems } = await (await import('./harness.mjs')).newPage(browser);
  try {
    await page.goto(`${server.url}/stream`);
    await page.getByTestId('stream-view').waitFor();
    await page.getByLabel('stream pipeline').selectOption({ label: 'WebRTC gain' });
    await page.getByRole('button', { name: 'Start' }).click();
    await page.locator('[data-testid="stream-publish"][data-state="connected"]').waitFor({ timeout: 15000 });
    await page.locator('[data-testid="stream-play"][data-state="connected"]').waitFor({ timeout: 15000 });
    const level = async (id) => Number((await page.getByTestId(id).getAttribute('data-level-db')) || -200);
    // The gated tone: the meter reads the loudest of ten 100 ms samples.
    const loudest = async (id) => {
      let best = -200;
      for (let i = 0; i < 12; i += 1) {
        best = Math.max(best, await level(id));
        await page.waitForTimeout(100);
      }
      return best;
    };
    const out = await loudest('meter-out');
    const mic = await loudest('meter-mic');
    assert(out > -50 && mic > -50, `meters: microphone ${mic} dB, output ${out} dB`);
    await screenshot(page, 'stream-live');
    const sessions = await (await server.api('/api/v1/sessions')).json();
    assert(sessions.length === 1, `one session while streaming, got ${sessions.length}`);
    assert((await page.getByTestId('stream-monitor-link').textContent()).includes(sessions[0].id), 'the Monitor link names the session');
    await page.getByRole('button', { name: 'Mute microphone' }).click();
    await page.waitForTimeout(800);
    const muted = await loudest('meter-out');
    assert(muted < out - 30, `muted, the output should fall silent: ${muted} dB (was ${out} dB)`);
    await screenshot(page, 'stream-muted');
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('[data-testid="stream-play"][data-state="off"]').waitFor();
    await waitFor(async () => (await (await server.api('/api/v1/sessions')).json()).length === 0, 5000, 'the session to be destroyed');
    console.log(`     stream view: microphone ${mic.toFixed(1)} dB, output ${out.toFixed(1)} dB, muted ${muted.toFixed(1)} dB`);
    assert(problems.length === 0, problems.join('\n'));
  } finally {
    await context.close();
  }
}

export const relayConfig = 'transports:\n  listen_ports: "19350-19359"\n';

/** The RTMP-to-WebRTC relay sample: ffmpeg publishes the gated tone (AAC over RTMP), a page
 * plays the WHEP output: every burst arrives, at the level sent. */
export async function rtmpRelayTest(server, browser, wav) {
  const port = 19350 + Math.floor(Math.random() * 10);
  const yaml = readFileSync(path.join(repoRoot, 'samples/pipelines/dynamic/rtmp_to_webrtc.yml'), 'utf8')
    .replace('port: 19350', `port: ${port}`)
    .replace(/kind: transport::webrtc::whep\n    params:\n/, (m) => `${m}      ice_local_addresses: "127.0.0.1"\n`);
  const session = await createSession(server, 'relay', yaml);
  const { spawn } = await import('node:child_process');
  const ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', wav, '-t', '12', '-c:a', 'aac', '-b:a', '128k', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/change-me-please`], { stdio: 'ignore' });
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${server.url}/`);
    const r = await publishPlayAndRecord(page, null, `${server.url}/whep/${session}/viewers`, 6, async () => null);
    const level = onLevelDb(r.rms[1]);
    const bursts = onsets(r.rms[1], level - 12).length;
    console.log(`     RTMP -> WHEP relay: played ${level.toFixed(1)} dBFS, ${bursts} tone bursts in 6 s`);
    assert(r.states.view === 'connected', `viewer ${r.states.view}`);
    assert(r.deleted.every((s) => s === 200), `DELETE of the viewer answered ${r.deleted}`);
    assert(bursts >= 5, `only ${bursts} tone bursts came through the relay in 6 s`);
    assert(Math.abs(level - kToneOnDbfs) < 3, `the relayed tone is at ${level.toFixed(1)} dBFS, sent at ${kToneOnDbfs.toFixed(1)}`);
  } finally {
    ffmpeg.kill('SIGKILL');
    await context.close();
    await server.api(`/api/v1/sessions/${session}`, { method: 'DELETE' });
  }
}

/** The two-publisher mixer sample: with only alice publishing, the mix plays her (the mixer
 * does not wait for bob), on time. */
export async function webrtcMixerTest(server, browser) {
  const yaml = readFileSync(path.join(repoRoot, 'samples/pipelines/dynamic/webrtc_mixer.yml'), 'utf8')
    .replace(/kind: transport::webrtc::(whip|whep)\n/g, (m) => `${m}    params:\n      ice_local_addresses: "127.0.0.1"\n`);
  const session = await createSession(server, 'mixer', yaml);
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${server.url}/`);
    const r = await publishPlayAndRecord(page, `${server.url}/whip/${session}/alice`, `${server.url}/whep/${session}/mix`, 5, async () => null);
    const mic = onLevelDb(r.rms[0]);
    const out = onLevelDb(r.rms[1]);
    const delays = latencies(r.rms);
    console.log(`     mixer, alice alone: mic ${mic.toFixed(1)} dB, mix ${out.toFixed(1)} dB, ${delays.length} bursts, latency p50 ${median(delays)} ms`);
    assert(delays.length >= 4, `only ${delays.length} bursts of alice reached the mix`);
    assert(Math.abs(out - mic) < 3, `the mix of alice alone is ${out.toFixed(1)} dB, her microphone ${mic.toFixed(1)} dB`);
  } finally {
    await context.close();
    await server.api(`/api/v1/sessions/${session}`, { method: 'DELETE' });
  }
}
