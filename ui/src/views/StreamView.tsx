// Stream: a live session for the browser. Pick a dynamic sample with WebRTC nodes, start it:
// the page creates the session, publishes the microphone to its WHIP node and plays its WHEP
// node, with a state and a level meter for each direction, mute, and a link to the session in
// Monitor. Stop ends both peers (DELETE) and destroys the session.
import { useEffect, useMemo, useRef, useState } from 'react';
import { parseDocument } from 'yaml';
import { api } from '../api/client';
import { useDynamicSamples, useNodeDefs } from '../api/queries';
import { levelMeter, whepPlay, whipPublish, type WebRtcPeer } from '../api/webrtc';
import { useCan } from '../stores/app';

type PeerState = RTCPeerConnectionState | 'off';

interface Live {
  sessionId: string;
  publisher?: WebRtcPeer;
  viewer?: WebRtcPeer;
  mic?: MediaStream;
  ctx: AudioContext;
}

const loopbackPage = () => ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(window.location.hostname);

/** The WebRTC nodes of a pipeline YAML, by family, in the order they appear. */
function webrtcNodes(yaml: string, endpointOf: (kind: string) => string | undefined) {
  const doc = parseDocument(yaml);
  const nodes = doc.getIn(['nodes']) as { items?: { key: { value: string }; value: { get: (k: string) => unknown } }[] } | undefined;
  const whip: string[] = [];
  const whep: string[] = [];
  for (const item of nodes?.items ?? []) {
    const kind = String(item.value?.get?.('kind') ?? '');
    const family = endpointOf(kind);
    if (family === 'whip') whip.push(String(item.key.value));
    if (family === 'whep') whep.push(String(item.key.value));
  }
  return { doc, whip, whep };
}

function Meter({ label, db, testId }: { label: string; db: number | null; testId: string }) {
  const pct = db === null ? 0 : Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  return (
    <div className="meter" data-testid={testId} data-level-db={db === null ? '' : db.toFixed(1)}>
      <span className="meter-label">{label}</span>
      <span className="meter-bar"><span style={{ width: `${pct}%` }} /></span>
      <span className="meter-value">{db === null || db < -90 ? '—' : `${db.toFixed(0)} dB`}</span>
    </div>
  );
}

export function StreamView({ onMonitor }: { onMonitor: () => void }) {
  const samples = useDynamicSamples();
  const defs = useNodeDefs();
  const canCreate = useCan('create_sessions');
  const endpointOf = useMemo(() => {
    const m = new Map((defs.data ?? []).map((d) => [d.kind, d.http_endpoint]));
    return (kind: string) => m.get(kind);
  }, [defs.data]);
  const choices = useMemo(
    () => (samples.data ?? []).filter((s) => s.mode === 'dynamic' && (() => { const n = webrtcNodes(s.yaml, endpointOf); return n.whip.length + n.whep.length > 0; })()),
    [samples.data, endpointOf],
  );
  const [sampleId, setSampleId] = useState('');
  const sample = choices.find((s) => s.id === sampleId) ?? choices[0];
  const [phase, setPhase] = useState<'idle' | 'starting' | 'live' | 'stopping'>('idle');
  const [error, setError] = useState<string | null>(null);
  const [pubState, setPubState] = useState<PeerState>('off');
  const [viewState, setViewState] = useState<PeerState>('off');
  const [muted, setMuted] = useState(false);
  const [levels, setLevels] = useState<{ mic: number | null; out: number | null }>({ mic: null, out: null });
  const [sessionId, setSessionId] = useState<string | null>(null);
  const live = useRef<Live | null>(null);
  const audioEl = useRef<HTMLAudioElement>(null);

  const stop = async () => {
    const l = live.current;
    live.current = null;
    if (!l) return;
    setPhase('stopping');
    await l.publisher?.stop();
    await l.viewer?.stop();
    l.mic?.getTracks().forEach((t) => t.stop());
    await l.ctx.close().catch(() => undefined);
    await api.destroySession(l.sessionId).catch(() => undefined);
    setPubState('off');
    setViewState('off');
    setLevels({ mic: null, out: null });
    setSessionId(null);
    setPhase('idle');
  };

  useEffect(() => () => void stop(), []); // leaving the view ends the stream

  const start = async () => {
    if (!sample) return;
    setError(null);
    setPhase('starting');
    const { doc, whip, whep } = webrtcNodes(sample.yaml, endpointOf);
    // A browser on the server's own machine reaches it on loopback only.
    if (loopbackPage()) {
      for (const id of [...whip, ...whep]) {
        if (!doc.hasIn(['nodes', id, 'params', 'ice_local_addresses'])) doc.setIn(['nodes', id, 'params', 'ice_local_addresses'], '127.0.0.1');
      }
    }
    const ctx = new AudioContext();
    const l: Live = { sessionId: '', ctx };
    try {
      const created = await api.createSession(`stream-${Date.now().toString(36)}`, doc.toString());
      l.sessionId = created.session_id;
      live.current = l;
      setSessionId(created.session_id);
      const base = (document.querySelector('base')?.getAttribute('href') ?? '/').replace(/\/$/, '');
      const meters: { mic?: ReturnType<typeof levelMeter>; out?: ReturnType<typeof levelMeter> } = {};
      if (whip.length > 0) {
        l.mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false } });
        meters.mic = levelMeter(ctx, l.mic);
        l.publisher = await whipPublish(`${base}/whip/${created.session_id}/${whip[0]}`, l.mic);
        const pc = l.publisher.pc;
        setPubState(pc.connectionState);
        pc.onconnectionstatechange = () => setPubState(pc.connectionState);
      }
      if (whep.length > 0) {
        l.viewer = await whepPlay(`${base}/whep/${created.session_id}/${whep[0]}`, (stream) => {
          if (audioEl.current) {
            audioEl.current.srcObject = stream;
            void audioEl.current.play().catch(() => undefined);
          }
          meters.out = levelMeter(ctx, stream);
        });
        const pc = l.viewer.pc;
        setViewState(pc.connectionState);
        pc.onconnectionstatechange = () => setViewState(pc.connectionState);
      }
      await ctx.resume().catch(() => undefined);
      const tick = setInterval(() => {
        if (live.current !== l) {
          clearInterval(tick);
          meters.mic?.close();
          meters.out?.close();
          return;
        }
        setLevels({ mic: meters.mic?.read() ?? null, out: meters.out?.read() ?? null });
      }, 100);
      setPhase('live');
    } catch (e) {
      setError((e as Error).message);
      live.current = l;
      await stop();
    }
  };

  const toggleMute = () => {
    const next = !muted;
    live.current?.mic?.getAudioTracks().forEach((t) => { t.enabled = !next; });
    setMuted(next);
  };

  return (
    <div className="stream" data-testid="stream-view">
      <section className="stream-panel">
        <h3>Live stream</h3>
        {choices.length === 0 ? (
          <p className="muted">No dynamic sample has a WebRTC node (transport::webrtc::whip or ::whep).</p>
        ) : (
          <>
            <label>
              Pipeline{' '}
              <select aria-label="stream pipeline" value={sample?.id ?? ''} disabled={phase !== 'idle'} onChange={(e) => setSampleId(e.target.value)}>
                {choices.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
              </select>
            </label>
            {sample && <p className="muted">{sample.description}</p>}
            <div className="row">
              {phase === 'idle' || phase === 'starting' ? (
                <button type="button" className="primary" onClick={start} disabled={!canCreate || phase !== 'idle'}>
                  {phase === 'starting' ? 'Starting…' : 'Start'}
                </button>
              ) : (
                <button type="button" onClick={stop} disabled={phase === 'stopping'}>Stop</button>
              )}
              <button type="button" onClick={toggleMute} disabled={phase !== 'live' || !live.current?.mic} aria-pressed={muted}>
                {muted ? 'Unmute microphone' : 'Mute microphone'}
              </button>
              {sessionId && <button type="button" className="link" onClick={onMonitor} data-testid="stream-monitor-link">Session {sessionId} in Monitor</button>}
            </div>
            {!canCreate && <p className="muted">Your role may not create sessions.</p>}
          </>
        )}
        {error && <pre className="field-error" role="alert">{error}</pre>}
      </section>
      <section className="stream-panel">
        <h3>Status</h3>
        <ul className="stream-status">
          <li data-testid="stream-session">Session: <b>{sessionId ? 'running' : phase === 'starting' ? 'creating…' : 'none'}</b></li>
          <li data-testid="stream-publish" data-state={pubState}>Microphone → server (WHIP): <b className={`state-${pubState}`}>{pubState}</b>{muted && ' (muted)'}</li>
          <li data-testid="stream-play" data-state={viewState}>Server → speaker (WHEP): <b className={`state-${viewState}`}>{viewState}</b></li>
        </ul>
        <Meter label="microphone" db={levels.mic} testId="meter-mic" />
        <Meter label="output" db={levels.out} testId="meter-out" />
        <audio ref={audioEl} autoPlay data-testid="stream-audio" />
      </section>
    </div>
  );
}
