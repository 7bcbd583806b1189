// SPDX-License-Identifier: MPL-2.0
// bench/run live: N concurrent live sessions, each a browser page publishing a gated 440 Hz
// tone over WHIP into transport::webrtc::whip -> Opus decode -> gain -> Opus encode ->
// transport::webrtc::whep and playing it back, for N = 1, 2, 4, 8 (or the counts given). Per
// level: skit's CPU (server and workers) per session, Chromium's CPU beside it, the
// microphone-to-playback latency (p50/p90 over every tone burst of every session), and whether
// every session kept real time (its playback had every burst, none late).
//   node bench/live.mjs [N ...]      (bench/run live [N ...])
import { readFileSync, readdirSync } from 'node:fs';
import { startServer } from '../ui/e2e/harness.mjs';
import { createSession, gainSessionYaml, latencies, launchWebRtcBrowser, makeGatedToneWav, onLevelDb, publishPlayAndRecord } from '../ui/e2e/webrtc.mjs';

const kSeconds = 8;
const ticks = 100; // USER_HZ

function descendants(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** CPU seconds (user + system) of a process tree, including its exited children's. */
function treeCpu(root) {
  let total = 0;
  for (const pid of descendants(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return total / ticks;
}

function chromiumPids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      return readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('chrom');
    } catch {
      return false;
    }
  }).map(Number);
}
const chromiumCpu = () => chromiumPids().reduce((s, p) => {
  try {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return s + (Number(f[11]) + Number(f[12])) / ticks;
  } catch {
    return s;
  }
}, 0);

async function level(server, browser, n) {
  const sessions = [];
  for (let i = 0; i < n; i += 1) sessions.push(await createSession(server, `live-${n}-${i}`, gainSessionYaml(0.5)));
  const contexts = await Promise.all(sessions.map(() => browser.newContext()));
  const pages = await Promise.all(contexts.map((c) => c.newPage()));
  await Promise.all(pages.map((p) => p.goto(`${server.url}/`)));
  let cpu0 = 0;
  let chrome0 = 0;
  let t0 = 0;
  const window = new Promise((resolve) => setTimeout(() => {
    cpu0 = treeCpu(server.pid);
    chrome0 = chromiumCpu();
    t0 = performance.now();
    setTimeout(() => resolve({ cpu: treeCpu(server.pid) - cpu0, chrome: chromiumCpu() - chrome0, wall: (performance.now() - t0) / 1000 }), 4000);
  }, 3000));
  const results = await Promise.all(pages.map((p, i) => publishPlayAndRecord(p, `${server.url}/whip/${sessions[i]}/mic`, `${server.url}/whep/${sessions[i]}/out`, kSeconds, async () => null)));
  const usage = await window;
  await Promise.all(contexts.map((c) => c.close()));
  for (const s of sessions) await server.api(`/api/v1/sessions/${s}`, { method: 'DELETE' });
  const delays = [];
  let realtime = 0;
  for (const r of results) {
    const d = latencies(r.rms);
    delays.push(...d);
    const out = onLevelDb(r.rms[1]);
    // Every burst of the recording came through, in time, at the level expected.
    if (r.states.pub === 'connected' && r.states.view === 'connected' && d.length >= kSeconds - 1 && Math.max(...d) < 400 && out > onLevelDb(r.rms[0]) - 9) realtime += 1;
  }
  delays.sort((a, b) => a - b);
  return {
    n,
    cpuPerSession: (usage.cpu / usage.wall / n) * 100,
    cpu: (usage.cpu / usage.wall) * 100,
    chrome: (usage.chrome / usage.wall) * 100,
    p50: delays[Math.floor(delays.length / 2)] ?? NaN,
    p90: delays[Math.floor(delays.length * 0.9)] ?? NaN,
    realtime,
  };
}

const counts = process.argv.slice(2).map(Number).filter((x) => x > 0);
const levels = counts.length > 0 ? counts : [1, 2, 4, 8];
const browser = await launchWebRtcBrowser(makeGatedToneWav());
const server = await startServer('');
console.log(`live WebRTC sessions (WHIP -> Opus decode -> gain -> Opus encode -> WHEP), ${kSeconds} s each, loopback, ${(await import('node:os')).cpus().length} cores`);
console.log('sessions  skit CPU  per session  Chromium CPU  latency p50  p90   real-time');
let best = 0;
try {
  for (const n of levels) {
    const r = await level(server, browser, n);
    console.log(`${String(n).padStart(8)}  ${r.cpu.toFixed(1).padStart(7)}%  ${r.cpuPerSession.toFixed(1).padStart(10)}%  ${r.chrome.toFixed(0).padStart(11)}%  ${String(r.p50).padStart(8)} ms  ${String(r.p90).padStart(4)} ms  ${r.realtime}/${n}`);
    if (r.realtime === n) best = n;
  }
} finally {
  await browser.close();
  await server.stop();
}
console.log(`summary: up to ${best} concurrent WHIP/WHEP sessions kept real time on this machine (the browser peers share its cores)`);
