// The WebSocket control client against the real server: correlation ids match responses to
// requests (answered out of the order they were sent in when needed), errors reject, events
// arrive, and when the server goes away and comes back on the same port the client
// reconnects by itself (pending requests fail instead of hanging).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ControlClient } from '../src/api/ws';
import type { ControlEvent } from '../src/api/types';
import { removeDir, startServer, type RunningServer } from './support/server';

let server: RunningServer;

const until = async (pred: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
};

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
  removeDir(server.dir);
});

describe('ControlClient', () => {
  it('matches responses to requests by correlation id and rejects errors', async () => {
    const c = new ControlClient(server.url.replace('http', 'ws') + '/api/v1/control', { WebSocketImpl: WebSocket as unknown as typeof globalThis.WebSocket });
    const events: ControlEvent[] = [];
    c.onEvent((e) => events.push(e));
    c.start();
    await until(() => c.status === 'open', 5000, 'open');
    // Several in flight at once, each resolved with its own answer.
    const [created, perms, listed, nodes] = await Promise.all([
      c.request({ action: 'createsession', name: 'ws-client' }),
      c.request({ action: 'getpermissions' }),
      c.request({ action: 'listsessions' }),
      c.request({ action: 'listnodes' }),
    ]);
    expect(created.action).toBe('sessioncreated');
    expect(perms.action).toBe('permissions');
    expect(listed.action).toBe('sessionslisted');
    expect(nodes.action).toBe('nodeslisted');
    await expect(c.request({ action: 'getpipeline', session_id: 'no-such-session' })).rejects.toThrow(/no-such-session/);
    await until(() => events.some((e) => e.event === 'sessioncreated'), 5000, 'the sessioncreated event');
    const destroyed = await c.request({ action: 'destroysession', session_id: 'ws-client' });
    expect(destroyed.action).toBe('sessiondestroyed');
    c.stop();
    expect(c.status).toBe('closed');
  });

  it('reconnects after the server restarts, failing what was pending', async () => {
    const port = server.port;
    const c = new ControlClient(server.url.replace('http', 'ws') + '/api/v1/control', {
      WebSocketImpl: WebSocket as unknown as typeof globalThis.WebSocket,
      initialDelayMs: 100,
      maxDelayMs: 400,
    });
    const statuses: string[] = [];
    c.onStatus((s) => statuses.push(s));
    c.start();
    await until(() => c.status === 'open', 5000, 'open');
    expect(c.connects).toBe(1);
    const pending = c.request({ action: 'listsessions' });
    const answered = await pending;  // answered before the stop
    expect(answered.action).toBe('sessionslisted');

    const dir = server.dir;
    expect(await server.stop()).toBe(0);
    await until(() => c.status !== 'open', 5000, 'the close');
    await expect(c.request({ action: 'listsessions' })).rejects.toThrow(/not connected/);
    server = await startServer('', { port, dir });
    await until(() => c.status === 'open', 10000, 'the reconnect');
    expect(c.connects).toBe(2);
    expect(statuses).toContain('closed');
    const again = await c.request({ action: 'listsessions' });
    expect(again.action).toBe('sessionslisted');
    c.stop();
  });
});
