// WHIP/WHEP clients (RFC 9725): one offer after ICE gathering, the answer from a 201 with the
// Location of the peer, DELETE on that Location to end it. The server does not trickle.
import { ApiError } from './client';

export interface WebRtcPeer {
  pc: RTCPeerConnection;
  location: string;
  stop: () => Promise<void>;
}

function iceGathered(pc: RTCPeerConnection, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, timeoutMs); // send what was gathered so far
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

async function negotiate(pc: RTCPeerConnection, url: string): Promise<WebRtcPeer> {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const res = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/sdp' },
    body: pc.localDescription?.sdp ?? '',
  });
  const text = await res.text();
  if (res.status !== 201) {
    pc.close();
    throw new ApiError(res.status, text.trim() || `${res.status} ${res.statusText}`);
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  const location = res.headers.get('Location') ?? '';
  return {
    pc,
    location,
    stop: async () => {
      pc.close();
      if (location) await fetch(location, { method: 'DELETE', credentials: 'same-origin' }).catch(() => undefined);
    },
  };
}

/** Publishes the stream's audio to a transport::webrtc::whip endpoint. */
export function whipPublish(url: string, stream: MediaStream): Promise<WebRtcPeer> {
  const pc = new RTCPeerConnection();
  for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  return negotiate(pc, url);
}

/** Plays a transport::webrtc::whep endpoint; `onStream` gets the received stream. */
export function whepPlay(url: string, onStream: (s: MediaStream) => void): Promise<WebRtcPeer> {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (e) => onStream(e.streams[0] ?? new MediaStream([e.track]));
  return negotiate(pc, url);
}

/** The level (dBFS, RMS) of a stream, sampled by `read()`; `close()` frees the analyser. */
export function levelMeter(ctx: AudioContext, stream: MediaStream) {
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  return {
    read: () => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      return 10 * Math.log10(sum / buf.length + 1e-12);
    },
    close: () => source.disconnect(),
  };
}
