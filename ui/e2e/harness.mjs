// The e2e harness: the real `skit serve` on a free loopback port (repository root as working
// directory, a temp config), Debian's Chromium driven headless by playwright-core, a small
// runner that prints each test and "N passed, N failed", and helpers to measure audio.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const uiRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(uiRoot, '..');
export const outputDir = process.env.SKIT_E2E_OUTPUT ?? path.join(uiRoot, 'e2e-output');
export const skitBinary = process.env.SKIT_BINARY ?? path.join(repoRoot, 'build/release/cli/skit');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export async function startServer(configYaml = '', listenPort = 0) {
  const dir = mkdtempSync(path.join(tmpdir(), 'skit-e2e-'));
  const config = path.join(dir, 'skit.yaml');
  // What the UI saves (samples, uploaded assets) goes to this test's directory, never into the
  // repository: the system samples and assets are linked in.
  mkdirSync(path.join(dir, 'samples'));
  for (const sub of ['oneshot', 'dynamic']) symlinkSync(path.join(repoRoot, 'samples/pipelines', sub), path.join(dir, 'samples', sub));
  mkdirSync(path.join(dir, 'audio'));
  for (const f of readdirSync(path.join(repoRoot, 'samples/audio'))) {
    if (/\.(ogg|opus|flac|mp3|wav|m4a)$/.test(f)) symlinkSync(path.join(repoRoot, 'samples/audio', f), path.join(dir, 'audio', f));
  }
  let text = typeof configYaml === 'function' ? configYaml(dir) : configYaml;
  if (!/^paths:/m.test(text)) text += `\npaths:\n  samples_dir: ${dir}/samples\n  audio_dir: ${dir}/audio\n`;
  writeFileSync(config, text);
  let log = '';
  const child = spawn(skitBinary, ['serve', '--listen', `127.0.0.1:${listenPort}`, '--grpc-listen', '', '--config', config], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (c) => (log += c));
  child.stderr.on('data', (c) => (log += c));
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`skit serve did not start:\n${log}`)), 15000);
    const check = () => {
      const m = /skit serve: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    child.stderr.on('data', check);
    child.stdout.on('data', check);
    child.on('exit', (code) => reject(new Error(`skit serve exited (${code}):\n${log}`)));
  });
  child.removeAllListeners('exit');
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    dir,
    pid: child.pid,
    log: () => log,
    api: async (p, init = {}) => fetch(url + p, init),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        const t = setTimeout(() => child.kill('SIGKILL'), 20000);
        child.on('exit', (code) => {
          clearTimeout(t);
          rmSync(dir, { recursive: true, force: true });
          resolve(code);
        });
        child.kill('SIGTERM');
      }),
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** A page at 1280x720 that records console errors and page errors. */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

export async function screenshot(page, name) {
  mkdirSync(outputDir, { recursive: true });
  const file = path.join(outputDir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Mean level (dB) of an audio file, measured by ffmpeg's volumedetect. */
export function meanVolumeDb(file) {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-i', file, '-af', 'volumedetect', '-f', 'null', '-'], { encoding: 'utf8' });
  const m = /mean_volume: (-?[\d.]+) dB/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m) throw new Error(`ffmpeg could not measure ${file}:\n${r.stderr}`);
  return Number(m[1]);
}

/** A constant 440 Hz tone (Ogg/Opus) of `seconds` at `amplitude`, for level measurements. */
export function makeTone(file, seconds, amplitude = 0.25) {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-af', `volume=${amplitude}`, '-c:a', 'libopus', '-b:a', '96k', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg could not make ${file}: ${r.stderr}`);
}

/** RMS levels (dB) of consecutive `windowMs` windows of an audio file (decoded by ffmpeg). */
export function windowLevels(file, windowMs = 100) {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', file, '-ac', '1', '-ar', '48000', '-f', 'f32le', '-'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`ffmpeg could not decode ${file}: ${r.stderr}`);
  const buf = r.stdout;
  const samples = new Float32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4));
  const n = (48000 * windowMs) / 1000;
  const out = [];
  for (let i = 0; i + n <= samples.length; i += n) {
    let sum = 0;
    for (let k = i; k < i + n; k += 1) sum += samples[k] * samples[k];
    out.push(10 * Math.log10(sum / n + 1e-20));
  }
  return out;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** Runs tests in order; prints a line per test and the closing "N passed, N failed". */
export async function run(tests) {
  const only = process.env.E2E_ONLY;
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of tests) {
    if (only && !name.includes(only)) continue;
    const t0 = Date.now();
    try {
      await fn();
      passed += 1;
      console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n     ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n     ')}`);
    }
  }
  console.log(`screenshots: ${outputDir}`);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
