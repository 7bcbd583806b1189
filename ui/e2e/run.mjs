// The UI's end-to-end tests: the real skit serve, Debian's Chromium (headless), playwright-core.
//   node e2e/run.mjs            (E2E_ONLY=design to run one)
import { launchBrowser, run, startServer } from './harness.mjs';
import { designTest } from './design.mjs';
import { convertTest } from './convert.mjs';
import { authConfig, authTest } from './auth.mjs';
import { launchWebRtcBrowser, makeGatedToneWav, relayConfig, rtmpRelayTest, webrtcMixerTest, webrtcAuthConfig, streamViewTest, webrtcGainTest, webrtcRefusalTest } from './webrtc.mjs';
import { monitorConfig, monitorCrashAndPollingTest, monitorStagingTest, monitorTest, reconnectTest, basePathTest } from './monitor.mjs';

const browser = await launchBrowser();
// WebRTC tests: fake media devices (a gated 440 Hz tone as the microphone), loopback ICE.
const gatedTone = makeGatedToneWav();
const webrtcBrowser = await launchWebRtcBrowser(gatedTone);
const withServer = (config, fn) => async () => {
  const server = await startServer(config);
  try {
    await fn(server, browser);
  } finally {
    const code = await server.stop();
    if (code !== 0) throw new Error(`skit serve exited with ${code}:\n${server.log().slice(-2000)}`);
  }
};

await run([
  ['design: palette, samples, canvas <-> YAML, refused connection, validate, delete', withServer('', designTest)],
  ['monitor: REST session appears, tune changes the written level, destroy with confirmation', withServer(monitorConfig, monitorTest)],
  ['monitor: SIGKILLed worker recovers, no REST polling for 10 s', withServer(monitorConfig, monitorCrashAndPollingTest)],
  ['monitor: staging shows the batch problems first, then applies one batch', withServer('', monitorStagingTest)],
  ['quality: the page says when the server is unreachable and reconnects by itself', async () => {
    const server = await startServer('');
    await reconnectTest(server, browser, () => startServer('', server.port));
  }],
  ['quality: served under server.base_path', withServer('server:\n  base_path: /skit\n', basePathTest)],
  ['convert: Ogg/Opus through the volume boost is +6 dB and plays', withServer('', convertTest)],
  ['auth: login form, viewer without mutating controls, 403 on the mutation', withServer(authConfig, authTest)],
  ['webrtc: WHIP in, gain 0.5, WHEP out is -6 dB of gain 1.0; latency measured', withServer('', (s) => webrtcGainTest(s, webrtcBrowser))],
  ['stream view: microphone over WHIP, playback over WHEP, meters, mute, stop', withServer('', (s) => streamViewTest(s, webrtcBrowser))],
  ['webrtc: the RTMP-to-WebRTC relay sample plays what ffmpeg publishes', withServer(relayConfig, (s) => rtmpRelayTest(s, webrtcBrowser, gatedTone))],
  ['webrtc: the two-publisher mixer sample plays one publisher without waiting for the other', withServer('', (s) => webrtcMixerTest(s, webrtcBrowser))],
  ['webrtc: refusals (token, role, Origin, wrong node, content type, no Opus, PATCH, unknown peer)', withServer(webrtcAuthConfig, webrtcRefusalTest)],
]).finally(() => Promise.all([browser.close(), webrtcBrowser.close()]));
