// Monitor view: a session created over REST appears; tuning its gain from the inspector changes
// the level of what it writes (measured); destroy with confirmation; a SIGKILLed worker shows
// Recovering, then Running, with its new pid and restart count; and no REST polling while a
// session runs (requests counted for 10 s while its stats change).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { assert, makeTone, median, newPage, screenshot, waitFor, windowLevels } from './harness.mjs';

export const monitorConfig = (dir) => `security:
  allowed_file_paths: ["samples/**", "${dir}/**"]
  allowed_write_paths: ["${dir}/**"]
sessions:
  backoff_initial_ms: 1500
  backoff_max_ms: 3000
`;

const tunedSession = (dir) => `name: tune me
mode: dynamic
nodes:
  reader: { kind: core::file_reader, params: { path: ${dir}/tone.ogg } }
  demux: { kind: containers::ogg::demuxer, needs: reader }
  pacer: { kind: core::pacer, needs: demux }
  decode: { kind: audio::opus::decoder, needs: pacer }
  gain: { kind: audio::gain, params: { gain: 1.0 }, needs: decode }
  encode: { kind: audio::opus::encoder, params: { bitrate: 96000 }, needs: gain }
  mux: { kind: containers::ogg::muxer, params: { codec: opus }, needs: encode }
  writer: { kind: core::file_writer, params: { path: ${dir}/out.ogg }, needs: mux }
`;

const crashSession = (dir) => `mode: dynamic
nodes:
  reader: { kind: core::file_reader, params: { path: ${dir}/tone.ogg } }
  demux: { kind: containers::ogg::demuxer, needs: reader }
  pacer: { kind: core::pacer, needs: demux }
  decode: { kind: audio::opus::decoder, needs: pacer }
  gain: { kind: audio::gain, isolation: dedicated, needs: decode }
  sink: { kind: core::sink, needs: gain }
`;

async function createSession(server, name, yaml) {
  const r = await server.api('/api/v1/sessions', { method: 'POST', body: JSON.stringify({ name, yaml }) });
  if (r.status !== 200) throw new Error(`creating ${name}: ${r.status} ${await r.text()}`);
  return r.json();
}

export async function monitorTest(server, browser) {
  makeTone(path.join(server.dir, 'tone.ogg'), 60);
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.url + '/monitor');
  await page.locator('[data-testid="ws-status"].open').waitFor();

  // A session created over REST appears in the list within 2 s (from the sessioncreated event).
  const t0 = Date.now();
  await createSession(server, 'tune-me', tunedSession(server.dir));
  await page.locator('[data-testid="session-tune-me"]').waitFor({ timeout: 2000 });
  const appeared = Date.now() - t0;
  console.log(`     [measure] session in the list after ${appeared} ms`);

  // Open it; the nodes run; tune the gain from the inspector.
  await page.locator('[data-testid="session-tune-me"] button.link').click();
  await page.locator('.react-flow__node[data-id="gain"]').waitFor();
  await waitFor(async () => (await page.locator('[data-testid="state-gain"]').innerText()) === 'Running', 10000, 'gain Running');
  await page.waitForTimeout(1500);  // a stretch at gain 1.0 in the output
  await page.locator('.react-flow__node[data-id="gain"]').click();
  const gainInput = page.locator('#p-gain-gain');
  await gainInput.waitFor();
  const tunedAt = Date.now();
  await gainInput.fill('0.5');
  await waitFor(async () => {
    const p = await (await server.api('/api/v1/sessions/tune-me/pipeline')).json();
    return p.nodes.gain.params.gain === 0.5;
  }, 5000, 'the tune applied on the server');
  console.log(`     [measure] tune applied ${Date.now() - tunedAt} ms after the input`);
  await page.waitForTimeout(5000);  // a stretch at gain 0.5 (and the hops' buffering behind it)
  await screenshot(page, 'monitor-tuned');

  // Destroy it from the UI, with confirmation.
  await page.locator('[aria-label="destroy tune-me"]').click();
  await page.locator('[role="dialog"]').waitFor();
  await screenshot(page, 'monitor-destroy-confirm');
  await page.locator('[data-testid="confirm-destroy"]').click();
  await page.locator('[data-testid="session-tune-me"]').waitFor({ state: 'detached', timeout: 5000 });
  const left = await (await server.api('/api/v1/sessions')).json();
  assert(!left.some((s) => s.name === 'tune-me'), 'the session is gone from the server');

  // The level of what the session wrote: -6 dB after the tune (gain 0.5).
  const out = path.join(server.dir, 'out.ogg');
  assert(existsSync(out), 'the session wrote its output');
  const levels = windowLevels(out, 100);
  assert(levels.length > 40, `enough output (${levels.length} windows)`);
  const before = median(levels.slice(3, 12));
  const after = median(levels.slice(-12, -3));
  console.log(`     [measure] output level ${before.toFixed(2)} dB before the tune, ${after.toFixed(2)} dB after: ${(after - before).toFixed(2)} dB`);
  assert(Math.abs(after - before - -6.02) < 0.7, `the tune changed the level by ${(after - before).toFixed(2)} dB (expected -6.02)`);
  assert(problems.length === 0, `no console errors:\n${problems.join('\n')}`);
  await context.close();
}

export async function monitorCrashAndPollingTest(server, browser) {
  makeTone(path.join(server.dir, 'tone.ogg'), 60);
  const { page, problems, context } = await newPage(browser);
  await createSession(server, 'crashy', crashSession(server.dir));
  await page.goto(server.url + '/monitor');
  await page.locator('[data-testid="session-crashy"] button.link').click();
  await waitFor(async () => (await page.locator('[data-testid="state-gain"]').innerText()) === 'Running', 10000, 'gain Running');
  const pid0 = (await (await server.api('/api/v1/sessions/crashy/pipeline')).json()).nodes.gain.worker_pid;
  assert(pid0 > 0, 'gain has a worker');
  await waitFor(async () => (await page.locator('[data-testid="worker-gain"]').innerText()).includes(`pid ${pid0}`), 5000, 'the pid shown');

  // From here on, count the REST requests the page makes: there must be none for 10 s.
  const requests = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/') && r.resourceType() !== 'websocket') requests.push(r.url());
  });
  const windowStart = Date.now();
  const stats0 = await page.locator('[data-testid="stats-gain"]').innerText();

  process.kill(pid0, 'SIGKILL');
  await waitFor(async () => (await page.locator('[data-testid="state-gain"]').innerText()) === 'Recovering', 5000, 'gain Recovering');
  await screenshot(page, 'monitor-recovering');
  await waitFor(async () => (await page.locator('[data-testid="state-gain"]').innerText()) === 'Running', 10000, 'gain Running again');
  const worker = await page.locator('[data-testid="worker-gain"]').innerText();
  const pid1 = (await (await server.api('/api/v1/sessions/crashy/pipeline')).json()).nodes.gain.worker_pid;
  assert(pid1 > 0 && pid1 !== pid0, 'a new worker');
  assert(worker.includes(`pid ${pid1}`) && worker.includes('restarts 1'), `the node shows its new worker and one restart (${worker})`);
  assert((await page.locator('[data-testid="timeline"]').innerText()).includes('gain: Recovering'), 'the restart is in the timeline');

  await page.waitForTimeout(Math.max(0, 10000 - (Date.now() - windowStart)));
  const stats1 = await page.locator('[data-testid="stats-gain"]').innerText();
  await screenshot(page, 'monitor-recovered');
  console.log(`     [measure] REST requests in ${((Date.now() - windowStart) / 1000).toFixed(1)} s of a running session: ${requests.length}; stats "${stats0.replace(/\n/g, ' ')}" -> "${stats1.replace(/\n/g, ' ')}"`);
  assert(stats1 !== stats0, 'the stats moved (from events)');
  assert(requests.length === 0, `no polling: ${requests.join(', ')}`);
  assert(problems.length === 0, `no console errors:\n${problems.join('\n')}`);
  await context.close();
}

/** Staging: a bad batch shows its problems first and changes nothing; a good one is applied
 * as one applybatch. */
export async function monitorStagingTest(server, browser) {
  const { page, problems, context } = await newPage(browser);
  await createSession(server, 'staged', `mode: dynamic
nodes:
  reader: { kind: core::file_reader, params: { path: samples/audio/music.ogg } }
  demux: { kind: containers::ogg::demuxer, needs: reader }
  pacer: { kind: core::pacer, params: { speed: 0.5 }, needs: demux }
  decode: { kind: audio::opus::decoder, needs: pacer }
  gain: { kind: audio::gain, needs: decode }
  sink: { kind: core::sink, needs: gain }
`);
  await page.goto(server.url + '/monitor');

  // Create one from the UI: a name and a dynamic sample.
  await page.getByRole('button', { name: 'New session' }).click();
  await page.getByRole('dialog').getByLabel('Name').fill('from-ui');
  await page.getByRole('dialog').getByLabel('sample').selectOption('dynamic/live_gain');
  await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  await page.locator('[data-testid="session-from-ui"]').waitFor();
  await page.locator('.react-flow__node[data-id="gain"]').waitFor();
  const listed = await (await server.api('/api/v1/sessions')).json();
  assert(listed.some((s) => s.name === 'from-ui'), 'created on the server');
  // A bad YAML is refused with the server's message, in the dialog.
  await page.getByRole('button', { name: 'New session' }).click();
  await page.getByRole('dialog').getByLabel('YAML').fill('mode: dynamic\nnodes:\n  g: { kind: audio::gain, params: { gain: 99 } }\n');
  await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  await page.getByRole('dialog').getByText("param 'gain'").waitFor();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();

  await page.locator('[data-testid="session-staged"] button.link').click();
  await page.getByRole('button', { name: 'Edit (staging)' }).click();

  // A file reader without its path: the problem is shown, and nothing is applied.
  await page.locator('.palette-item[data-kind="core::file_reader"] button').click();
  await page.locator('.react-flow__node[data-id="file_reader"]').waitFor();
  await page.getByRole('button', { name: 'Apply' }).click();
  const issues = page.locator('[data-testid="batch-issues"]');
  await waitFor(async () => /operation 1: .*path/.test(await issues.innerText()), 5000, 'the batch problem shown');
  let p = await (await server.api('/api/v1/sessions/staged/pipeline')).json();
  assert(!('file_reader' in p.nodes), 'nothing applied');
  await screenshot(page, 'monitor-staging-problems');

  // Remove it again (Delete), add a second sink on the gain, apply.
  await page.locator('.react-flow__node[data-id="file_reader"]').click();
  await page.keyboard.press('Delete');
  await page.locator('.palette-item[data-kind="core::sink"] button').click();
  await page.locator('.react-flow__node[data-id="sink_2"]').waitFor();
  await page.locator('.react-flow__controls-fitview').click();
  await page.waitForTimeout(300);
  const { dragConnect } = await import('./design.mjs');
  await dragConnect(page, 'gain', 'out', 'sink_2', 'in');
  const ops = await page.locator('[data-testid="staged-ops"]').innerText();
  assert(ops.includes('add sink_2 (core::sink)') && ops.includes('connect gain.out → sink_2.in') && !ops.includes('file_reader'), `the staged batch (${ops})`);
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByRole('button', { name: 'Edit (staging)' }).waitFor();
  p = await (await server.api('/api/v1/sessions/staged/pipeline')).json();
  assert(p.nodes.sink_2?.kind === 'core::sink', 'sink_2 added');
  assert(p.connections.some((c) => c.from_node === 'gain' && c.to_node === 'sink_2'), 'gain feeds sink_2');
  await waitFor(async () => (await page.locator('[data-testid="state-sink_2"]').innerText()) === 'Running', 10000, 'sink_2 Running in the view');
  // Chromium logs the refused creation (400) as a failed resource; nothing else may appear.
  const unexpected = problems.filter((x) => !x.includes('the server responded with a status of 400'));
  assert(unexpected.length === 0 && problems.length === 1, `no console errors but the refused creation:\n${problems.join('\n')}`);
  await context.close();
}

/** The server goes away: the page says so; it comes back on the same port: the WebSocket
 * reconnects by itself and the list is current again. */
export async function reconnectTest(server, browser, restart) {
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.url + '/monitor');
  await page.locator('[data-testid="ws-status"].open').waitFor();
  await server.stop();
  await page.locator('[data-testid="unreachable"]').waitFor({ timeout: 8000 });
  await screenshot(page, 'unreachable');
  const again = await restart();
  try {
    await page.locator('[data-testid="ws-status"].open').waitFor({ timeout: 15000 });
    await page.locator('[data-testid="unreachable"]').waitFor({ state: 'detached', timeout: 10000 });
    await createSession(again, 'after-restart', '');
    await page.locator('[data-testid="session-after-restart"]').waitFor({ timeout: 3000 });
    // The only errors are the failed requests while the server was away.
    const unexpected = problems.filter((x) => !/ERR_CONNECTION_REFUSED|WebSocket connection|Failed to load resource/.test(x));
    assert(unexpected.length === 0, `no other console errors:\n${unexpected.join('\n')}`);
  } finally {
    await context.close();
    await again.stop();
  }
}

/** Served under server.base_path (behind a proxy that keeps its prefix): every view works. */
export async function basePathTest(server, browser) {
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.url + '/skit/monitor');
  await page.locator('[data-testid="ws-status"].open').waitFor();
  await createSession(server, 'prefixed', '');
  await page.locator('[data-testid="session-prefixed"]').waitFor({ timeout: 3000 });
  await page.getByRole('button', { name: 'Design' }).click();
  assert(new URL(page.url()).pathname === '/skit/', `the Design view at /skit/ (${page.url()})`);
  await page.locator('.palette-item').first().waitFor();
  await page.getByRole('tab', { name: 'Samples' }).click();
  await page.locator('[data-testid="sample-oneshot/volume_boost"]').waitFor();
  await page.reload();
  await page.locator('[data-testid="palette"]').waitFor();
  const requests = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  await page.getByRole('button', { name: 'Convert' }).click();
  await page.getByLabel('pipeline', { exact: true }).waitFor();
  await page.waitForTimeout(300);
  assert(requests.length > 0 && requests.every((p) => p.startsWith('/skit/')), `every request under /skit/ (${requests.join(', ')})`);
  assert(problems.length === 0, `no console errors:\n${problems.join('\n')}`);
  await context.close();
}
