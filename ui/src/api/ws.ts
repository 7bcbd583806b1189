// The WebSocket control plane client: correlation ids matched to responses, requests that
// fail (rather than hang) when the connection drops, and reconnection with backoff. Events
// go to every listener; after a reconnect, listeners of 'open' resynchronise (events sent
// while the connection was down are lost, as with any broadcast).
import type { ControlEvent, ControlRequest, ControlResponse, Envelope } from './types';

export type ConnectionStatus = 'connecting' | 'open' | 'closed';

export interface ControlClientOptions {
  /** A WebSocket constructor (the browser's by default; `ws` in Node tests). */
  WebSocketImpl?: typeof WebSocket;
  initialDelayMs?: number;
  maxDelayMs?: number;
  requestTimeoutMs?: number;
}

export class ControlError extends Error {}

interface Pending {
  resolve: (r: ControlResponse) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class ControlClient {
  private socket: WebSocket | null = null;
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private statusValue: ConnectionStatus = 'closed';
  private readonly eventListeners = new Set<(e: ControlEvent) => void>();
  private readonly statusListeners = new Set<(s: ConnectionStatus) => void>();
  private readonly opts: Required<ControlClientOptions>;
  /** How many times the connection was (re)opened. */
  connects = 0;

  constructor(private readonly url: string, options: ControlClientOptions = {}) {
    this.opts = {
      WebSocketImpl: options.WebSocketImpl ?? (globalThis.WebSocket as typeof WebSocket),
      initialDelayMs: options.initialDelayMs ?? 250,
      maxDelayMs: options.maxDelayMs ?? 5000,
      requestTimeoutMs: options.requestTimeoutMs ?? 15000,
    };
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  start(): void {
    this.stopped = false;
    if (!this.socket) this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onclose = s.onerror = s.onmessage = null;
      try {
        s.close(1000, 'client stopped');
      } catch {
        /* already closed */
      }
    }
    this.failPending('the client was stopped');
    this.setStatus('closed');
  }

  onEvent(listener: (e: ControlEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  onStatus(listener: (s: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Sends a request and resolves with its response (rejects on `error` or a lost connection). */
  request(payload: ControlRequest): Promise<ControlResponse> {
    return new Promise((resolve, reject) => {
      const s = this.socket;
      if (!s || this.statusValue !== 'open') {
        reject(new ControlError('not connected to the server'));
        return;
      }
      const id = `c${++this.nextId}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlError(`no answer to '${payload.action}' within ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          if (r.action === 'error') reject(new ControlError(r.message));
          else resolve(r);
        },
        reject,
        timer,
      });
      const envelope: Envelope<ControlRequest> = { type: 'request', correlation_id: id, payload };
      s.send(JSON.stringify(envelope));
    });
  }

  /** Fire and forget (tunenodeasync): false when not connected. */
  send(payload: ControlRequest): boolean {
    if (!this.socket || this.statusValue !== 'open') return false;
    this.socket.send(JSON.stringify({ type: 'request', payload }));
    return true;
  }

  private open(): void {
    this.setStatus('connecting');
    const s = new this.opts.WebSocketImpl(this.url);
    this.socket = s;
    s.onopen = () => {
      if (this.socket !== s) return;
      this.attempt = 0;
      this.connects += 1;
      this.setStatus('open');
    };
    s.onmessage = (m: MessageEvent) => this.receive(typeof m.data === 'string' ? m.data : String(m.data));
    s.onerror = () => {
      /* onclose follows and schedules the retry */
    };
    s.onclose = () => {
      if (this.socket !== s) return;
      this.socket = null;
      this.failPending('the connection to the server was lost');
      this.setStatus('closed');
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = Math.min(this.opts.maxDelayMs, this.opts.initialDelayMs * 2 ** this.attempt);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }

  private receive(text: string): void {
    let msg: Envelope<ControlResponse | ControlEvent>;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'event') {
      for (const l of this.eventListeners) l(msg.payload as ControlEvent);
      return;
    }
    if (msg.type === 'response' && msg.correlation_id !== undefined) {
      const p = this.pending.get(msg.correlation_id);
      if (p) {
        this.pending.delete(msg.correlation_id);
        clearTimeout(p.timer);
        p.resolve(msg.payload as ControlResponse);
      }
    }
  }

  private failPending(reason: string): void {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ControlError(reason));
    }
    this.pending.clear();
  }

  private setStatus(s: ConnectionStatus): void {
    if (s === this.statusValue) return;
    this.statusValue = s;
    for (const l of this.statusListeners) l(s);
  }
}

/** ws://host/api/v1/control for the page's origin. */
export function controlUrl(loc: Location = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const base = document.querySelector('base')?.getAttribute('href') ?? '/';
  return `${scheme}//${loc.host}${base.replace(/\/$/, '')}/api/v1/control`;
}
