// Convert view: Ogg/Opus speech through the volume boost sample; the downloaded result is
// +6 dB (measured) and the audio player plays it.
import path from 'node:path';
import { assert, meanVolumeDb, newPage, repoRoot, screenshot, waitFor } from './harness.mjs';

export async function convertTest(server, browser) {
  const { page, problems, context } = await newPage(browser);
  await page.goto(server.url + '/convert');
  const pipeline = page.getByLabel('pipeline', { exact: true });
  await waitFor(async () => (await pipeline.inputValue()) === 'oneshot/volume_boost', 5000, 'the volume boost sample selected');
  const input = path.join(repoRoot, 'samples/audio/speech.ogg');
  await page.locator('[data-testid="convert-file"]').setInputFiles(input);
  await page.getByRole('button', { name: 'Run conversion' }).click();
  await page.locator('[data-testid="convert-result"]').waitFor({ timeout: 30000 });
  assert((await page.locator('[data-testid="convert-progress"]').innerText()).includes('done'), 'the progress ends done');

  // The player plays it.
  const played = await page.evaluate(async () => {
    const a = document.querySelector('[data-testid="result-audio"]');
    await a.play();
    await new Promise((r) => setTimeout(r, 700));
    return { time: a.currentTime, paused: a.paused, duration: a.duration, error: a.error?.message ?? null };
  });
  assert(played.error === null && played.time > 0.3 && !played.paused, `the audio player plays (${JSON.stringify(played)})`);
  await screenshot(page, 'convert-result');

  // The download is +6 dB.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid="download"]').click()]);
  const saved = path.join(server.dir, download.suggestedFilename());
  await download.saveAs(saved);
  assert(download.suggestedFilename() === 'result.ogg', `an .ogg download (${download.suggestedFilename()})`);
  const gain = meanVolumeDb(saved) - meanVolumeDb(input);
  console.log(`     [measure] result level ${gain.toFixed(2)} dB over the input; played ${played.time.toFixed(2)} s of ${played.duration.toFixed(2)} s`);
  assert(Math.abs(gain - 6.02) < 0.5, `the result is +6 dB (measured ${gain.toFixed(2)} dB)`);

  // The same through the audio library: pick the system asset speech.ogg.
  await page.getByLabel('audio library').check();
  await page.getByLabel('audio asset').selectOption('speech.ogg');
  await page.getByRole('button', { name: 'Run conversion' }).click();
  await waitFor(async () => (await page.locator('[data-testid="convert-progress"]').innerText()).includes('done'), 30000, 'the asset conversion');
  const [again] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid="download"]').click()]);
  const saved2 = path.join(server.dir, 'from-asset.ogg');
  await again.saveAs(saved2);
  const gain2 = meanVolumeDb(saved2) - meanVolumeDb(input);
  assert(Math.abs(gain2 - 6.02) < 0.5, `the asset's result is +6 dB too (${gain2.toFixed(2)} dB)`);

  // Pasted YAML with a text input: the JSON result is shown as text.
  await page.getByLabel('pipeline YAML').fill(
    'mode: oneshot\nsteps:\n  - kind: streamkit::http_input\n  - kind: core::json_serialize\n    params: { newline_delimited: true }\n' +
      '  - kind: streamkit::http_output\n    params: { content_type: application/x-ndjson }\n',
  );
  assert((await page.getByLabel('pipeline', { exact: true }).inputValue()) === '', 'the pasted YAML replaces the sample');
  await page.getByLabel('text', { exact: true }).check();
  await page.getByLabel('input text').fill('hello from the browser');
  await page.getByRole('button', { name: 'Run conversion' }).click();
  await waitFor(async () => (await page.locator('.result-text').count()) === 1 && (await page.locator('.result-text').innerText()).includes('"hello from the browser"'), 30000, 'the NDJSON shown as text');
  assert((await page.locator('[data-testid="convert-result"]').innerText()).includes('application/x-ndjson'), 'with its content type');
  assert((await page.locator('[data-testid="result-audio"]').count()) === 0, 'no player for text');
  await screenshot(page, 'convert-text');
  assert(problems.length === 0, `no console errors:\n${problems.join('\n')}`);
  await context.close();
}
