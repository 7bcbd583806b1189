// Design view: palette, samples, canvas <-> YAML, refused connections, validate, delete.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { assert, newPage, repoRoot, screenshot, waitFor } from './harness.mjs';

export async function dragConnect(page, from, fromPin, to, toPin) {
  const src = page.locator(`.react-flow__node[data-id="${from}"] .react-flow__handle.source[data-handleid="${fromPin}"]`);
  const dst = page.locator(`.react-flow__node[data-id="${to}"] .react-flow__handle.target[data-handleid="${toPin}"]`);
  const a = await src.boundingBox();
  const b = await dst.boundingBox();
  assert(a && b, `handles ${from}.${fromPin} and ${to}.${toPin} are on the canvas`);
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2 + 20, { steps: 6 });
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 6 });
  await page.mouse.up();
}

export const editorText = (page) => page.locator('[data-testid="yaml-editor"] .cm-content').innerText();

export async function designTest(server, browser) {
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.url + '/');
  await page.locator('[data-testid="palette"]').waitFor();

  // The palette lists every kind the server has.
  const kinds = (await (await server.api('/api/v1/schema/nodes')).json()).map((d) => d.kind);
  await waitFor(async () => (await page.locator('.palette-item').count()) === kinds.length, 5000, 'the palette');
  for (const k of kinds) assert((await page.locator(`.palette-item[data-kind="${k}"]`).count()) === 1, `palette lists ${k}`);
  await page.getByLabel('Search nodes').fill('opus');
  const filtered = await page.locator('.palette-item').count();
  assert(filtered > 0 && filtered < kinds.length, `search narrows the palette (${filtered} of ${kinds.length})`);
  await page.getByLabel('Search nodes').fill('');

  // Loading the volume boost sample fills the canvas and the YAML pane.
  await page.getByRole('tab', { name: 'Samples' }).click();
  await page.locator('[data-testid="sample-oneshot/volume_boost"] button', { hasText: 'Load' }).click();
  await waitFor(async () => (await page.locator('.react-flow__node').count()) === 7, 5000, '7 nodes on the canvas');
  await waitFor(async () => (await editorText(page)).includes('mode: oneshot'), 5000, 'mode: oneshot in the YAML pane');
  await screenshot(page, 'design-volume-boost');

  // An audio::gain from the palette, dragged onto the canvas and connected, is in the YAML.
  await page.getByRole('tab', { name: 'Nodes' }).click();
  const canvas = page.locator('[data-testid="canvas"] .react-flow__pane');
  const box = await canvas.boundingBox();
  await page.locator('.palette-item[data-kind="audio::gain"]').dragTo(canvas, { targetPosition: { x: box.width * 0.55, y: box.height * 0.85 } });
  await page.locator('.react-flow__node[data-id="gain"]').waitFor();
  await waitFor(async () => (await editorText(page)).includes('gain:'), 5000, 'the new node in the YAML');
  await page.locator('.react-flow__controls-fitview').click();
  await page.waitForTimeout(300);
  await dragConnect(page, 'step_2', 'out', 'gain', 'in');
  await waitFor(async () => /gain:\s+kind: audio::gain\s+needs: step_2/.test(await editorText(page)), 5000, 'gain needs step_2 in the YAML');

  // A connection the pin types do not allow is refused, with the reason.
  await page.locator('.palette-item[data-kind="audio::gain"] button').click();
  await page.locator('.react-flow__node[data-id="gain_2"]').waitFor();
  await page.locator('.react-flow__controls-fitview').click();
  await page.waitForTimeout(300);
  await dragConnect(page, 'step_0', 'out', 'gain_2', 'in');
  const notice = page.locator('.notice');
  await waitFor(async () => /Connection refused: step_0\.out produces Binary but gain_2\.in accepts RawAudio/.test(await notice.innerText()), 5000, 'the refusal');
  assert(!/gain_2:[^]*needs/.test(await editorText(page)), 'the refused connection is not in the YAML');
  await screenshot(page, 'design-refused-connection');

  // Keyboard delete removes the selected node.
  await page.locator('.react-flow__node[data-id="gain_2"]').click();
  await page.keyboard.press('Delete');
  await waitFor(async () => !(await editorText(page)).includes('gain_2'), 5000, 'gain_2 gone after Delete');

  // Validate: the server's errors (an encoder with nothing to encode), each clickable to its node.
  await page.locator('.palette-item[data-kind="audio::opus::encoder"] button').click();
  await page.locator('.react-flow__node[data-id="encoder"]').waitFor();
  await page.getByRole('button', { name: 'Validate' }).click();
  const diag = page.locator('[data-testid="diagnostics"] li');
  await diag.first().waitFor();
  const first = await diag.first().innerText();
  await diag.first().locator('button').click();
  await page.locator('[data-testid="inspector"]').waitFor();
  const node = /\[([^\]]+)\]/.exec(first)?.[1];
  assert(node === 'encoder' && (await page.locator('[data-testid="inspector"] h3').innerText()).startsWith(node), `the error (${first}) selects its node`);

  // Edit the YAML: the graph follows; a YAML error is shown at its line.
  await page.locator('[data-testid="yaml-editor"] .cm-content').click();
  await page.keyboard.press('Control+a');
  await page.keyboard.insertText('mode: dynamic\nnodes:\n  src:\n    kind: core::file_reader\n    params: { path: samples/audio/music.ogg }\n  sink:\n    kind: core::sink\n    needs: src\n');
  await waitFor(async () => (await page.locator('.react-flow__node').count()) === 2, 5000, 'the canvas follows the YAML');
  await page.keyboard.insertText('  broken: [\n');
  await waitFor(async () => /line \d+:/.test(await page.locator('[data-testid="yaml-problems"]').innerText()), 5000, 'the YAML error with its line');
  assert((await page.locator('.react-flow__node').count()) === 2, 'a broken YAML keeps the last graph');

  // The inspector's form: a number with its range.
  await page.keyboard.press('Control+a');
  await page.keyboard.insertText('mode: dynamic\nnodes:\n  src:\n    kind: core::file_reader\n    params: { path: samples/audio/music.ogg }\n  sink:\n    kind: core::sink\n    needs: src\n');
  await waitFor(async () => (await page.locator('[data-testid="yaml-problems"]').count()) === 0, 5000, 'the fixed YAML parses');
  await page.locator('.react-flow__node[data-id="src"]').click();
  await page.locator('[data-testid="inspector"] input#p-src-chunk_size').waitFor();
  await screenshot(page, 'design-yaml-edit');

  // A selection saved as a fragment, inserted into another pipeline.
  await page.locator('.react-flow__node[data-id="src"]').click();
  await page.locator('.react-flow__node[data-id="sink"]').click({ modifiers: ['Control'] });
  await page.getByRole('button', { name: 'Fragment…' }).click();
  await page.getByRole('dialog').getByText('Save 2 nodes as a fragment').waitFor();
  await page.getByRole('dialog').getByLabel('Name', { exact: true }).fill('reader and sink');
  await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved “reader and sink”.').waitFor();
  await page.getByRole('button', { name: 'New' }).click();
  await waitFor(async () => (await page.locator('.react-flow__node').count()) === 0, 5000, 'an empty canvas');
  await page.getByRole('tab', { name: 'Samples' }).click();
  await page.locator('[data-testid="sample-user/reader-and-sink"] button', { hasText: 'Insert' }).click();
  await waitFor(async () => (await page.locator('.react-flow__node').count()) === 2, 5000, 'the fragment inserted');
  assert(/sink:\s+kind: core::sink\s+needs: src/.test(await editorText(page)), 'with its connection');
  await page.locator('[data-testid="sample-user/reader-and-sink"] button', { hasText: 'Insert' }).click();
  await waitFor(async () => (await editorText(page)).includes('src_2:'), 5000, 'a second copy, renamed');
  assert(/sink_2:\s+kind: core::sink\s+needs: src_2/.test(await editorText(page)), 'renamed consistently');
  await page.getByRole('tab', { name: 'Nodes' }).click();

  // Export writes the YAML as a file; importing a file loads it.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  const exported = path.join(server.dir, 'exported.yml');
  await download.saveAs(exported);
  const shown = (await editorText(page)).trim();
  assert(readFileSync(exported, 'utf8').trim() === shown, `the export is the YAML pane's text:\n${readFileSync(exported, 'utf8')}\n---\n${shown}`);
  await page.locator('[data-testid="import-file"]').setInputFiles(path.join(repoRoot, 'samples/pipelines/oneshot/mixing.yml'));
  await waitFor(async () => (await editorText(page)).includes('audio::mixer'), 5000, 'the imported YAML');
  await waitFor(async () => (await page.locator('.react-flow__node').count()) >= 5, 5000, 'the imported graph');

  // A secret param (an RTMP stream key) is typed into a password field.
  await page.locator('[data-testid="yaml-editor"] .cm-content').click();
  await page.keyboard.press('Control+a');
  await page.keyboard.insertText('mode: dynamic\nnodes:\n  ingest:\n    kind: transport::rtmp::listen\n    params: { port: 19000, stream_key: my-key }\n  dec:\n    kind: audio::aac::decoder\n    needs: ingest\n');
  await waitFor(async () => (await page.locator('.react-flow__node').count()) === 2, 5000, 'the ingest graph');
  await page.locator('.react-flow__controls-fitview').click();
  await page.locator('.react-flow__node[data-id="ingest"]').click();
  const key = page.locator('[data-testid="inspector"] input#p-ingest-stream_key');
  await key.waitFor();
  assert((await key.getAttribute('type')) === 'password', 'stream_key is a password field');
  assert((await page.locator('[data-testid="inspector"] input#p-ingest-app').getAttribute('type')) === 'text', 'app is a text field');
  await key.fill('a-new-key');
  await key.scrollIntoViewIfNeeded();
  await screenshot(page, 'design-secret-param');
  assert(problems.length === 0, `no console errors:\n${problems.join('\n')}`);
  await context.close();
}
