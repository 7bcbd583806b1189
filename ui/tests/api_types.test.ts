// The API types of src/api/types.ts against what a real server returns: every key the type
// declares (the `satisfies` lists fail to compile when the type changes) is present with its
// JSON type, and the server sends nothing the type does not know.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type {
  AudioAsset, AuthMe, CompiledPipeline, LiveNode, LivePipeline, NodeDefinition, NodeStats, PacketTypeMeta,
  Permissions, PermissionsInfo, SamplePipeline, SessionCreated, SessionInfo, ValidateResponse,
} from '../src/api/types';
import { ControlClient } from '../src/api/ws';
import { removeDir, startServer, repoRoot, readText, type RunningServer } from './support/server';

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'null' | 'any';
type Shape<T> = Record<keyof T, Kind | `${Kind}?`>;

function check(what: string, value: unknown, shape: Record<string, string>) {
  expect(value, what).toBeTypeOf('object');
  const obj = value as Record<string, unknown>;
  for (const [key, kind] of Object.entries(shape)) {
    const optional = kind.endsWith('?');
    const want = kind.replace('?', '');
    if (!(key in obj)) {
      expect(optional, `${what}.${key} is missing`).toBe(true);
      continue;
    }
    const v = obj[key];
    const got = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    if (want !== 'any') expect(got, `${what}.${key}`).toBe(want);
  }
  for (const key of Object.keys(obj)) expect(Object.keys(shape), `${what} has '${key}', which its type lacks`).toContain(key);
}

const sessionInfo = { id: 'string', name: 'string', created_at: 'string' } satisfies Shape<SessionInfo>;
const sessionCreated = { session_id: 'string', name: 'string', created_at: 'string' } satisfies Shape<SessionCreated>;
const nodeDef = { kind: 'string', description: 'string', param_schema: 'object', inputs: 'array', outputs: 'array', categories: 'array', bidirectional: 'boolean', http_endpoint: 'string?' } satisfies Shape<NodeDefinition>;
const packetMeta = { id: 'string', label: 'string', color: 'string', display_template: 'string?', compatibility: 'object' } satisfies Shape<PacketTypeMeta>;
const permissionKeys = {
  create_sessions: 'boolean', destroy_sessions: 'boolean', list_sessions: 'boolean', modify_sessions: 'boolean', tune_nodes: 'boolean',
  load_plugins: 'boolean', delete_plugins: 'boolean', list_nodes: 'boolean', list_samples: 'boolean', read_samples: 'boolean',
  write_samples: 'boolean', delete_samples: 'boolean', access_all_sessions: 'boolean', upload_assets: 'boolean', delete_assets: 'boolean',
  process_oneshot: 'boolean',
} satisfies Shape<Permissions>;
const permissionsInfo = { role: 'string', permissions: 'object' } satisfies Shape<PermissionsInfo>;
const authMe = { auth_enabled: 'boolean', name: 'null', role: 'string', via: 'string?', permissions: 'object' } satisfies Shape<AuthMe>;
const sample = { id: 'string', name: 'string', description: 'string', yaml: 'string', is_system: 'boolean', mode: 'string', is_fragment: 'boolean' } satisfies Shape<SamplePipeline>;
const asset = { id: 'string', name: 'string', path: 'string', format: 'string', size_bytes: 'number', is_system: 'boolean', url: 'string', license: 'string?' } satisfies Shape<AudioAsset>;
const validate = { valid: 'boolean', mode: 'string', errors: 'array', pipeline: 'object' } satisfies Shape<ValidateResponse>;
const compiled = { name: 'string', description: 'string', mode: 'string', nodes: 'object', node_order: 'array', connections: 'array' } satisfies Shape<CompiledPipeline>;
const livePipeline = { name: 'string', description: 'string', mode: 'string', nodes: 'object', connections: 'array' } satisfies Shape<LivePipeline>;
const liveNode = { kind: 'string', params: 'object', state: 'any', stats: 'object', worker_pid: 'number', restarts: 'number' } satisfies Shape<LiveNode>;
const stats = { received: 'number', sent: 'number', discarded: 'number', errored: 'number', duration_secs: 'number', bytes_in: 'number', bytes_out: 'number', telemetry_dropped: 'number' } satisfies Shape<NodeStats>;

let server: RunningServer;
const get = async (p: string) => (await fetch(server.url + p)).json();

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
  removeDir(server.dir);
});

describe('API types match the server', () => {
  it('schema, permissions, auth, samples, assets, validate', async () => {
    const nodes = await get('/api/v1/schema/nodes');
    for (const n of nodes) check(`node ${n.kind}`, n, nodeDef);
    for (const p of await get('/api/v1/schema/packets')) check(`packet ${p.id}`, p, packetMeta);
    const perms = await get('/api/v1/permissions');
    check('permissions', perms, permissionsInfo);
    check('permissions.permissions', perms.permissions, permissionKeys);
    const me = await get('/api/v1/auth/me');
    check('auth/me', me, authMe);
    for (const s of [...(await get('/api/v1/samples/oneshot')), ...(await get('/api/v1/samples/dynamic'))]) check(`sample ${s.id}`, s, sample);
    for (const a of await get('/api/v1/assets/audio')) check(`asset ${a.id}`, a, asset);
    const v = await (await fetch(server.url + '/api/v1/validate', { method: 'POST', body: JSON.stringify({ yaml: readText(`${repoRoot}/samples/pipelines/oneshot/volume_boost.yml`) }) })).json();
    check('validate', v, validate);
    check('validate.pipeline', v.pipeline, compiled);
  });

  it('sessions over REST and the WebSocket events', async () => {
    const c = new ControlClient(server.url.replace('http', 'ws') + '/api/v1/control', { WebSocketImpl: WebSocket as unknown as typeof globalThis.WebSocket });
    const events: Record<string, unknown>[] = [];
    c.onEvent((e) => events.push(e as unknown as Record<string, unknown>));
    c.start();
    for (let i = 0; i < 250 && c.status !== 'open'; i += 1) await new Promise((r) => setTimeout(r, 20));
    const yaml = readText(`${repoRoot}/samples/pipelines/dynamic/live_gain.yml`);
    const created = await (await fetch(server.url + '/api/v1/sessions', { method: 'POST', body: JSON.stringify({ name: 'typed', yaml }) })).json();
    check('session created', created, sessionCreated);
    for (const s of await get('/api/v1/sessions')) check('session', s, sessionInfo);
    for (let i = 0; i < 150 && !events.some((e) => e.event === 'nodestatsupdated'); i += 1) await new Promise((r) => setTimeout(r, 20));
    const p = await get('/api/v1/sessions/typed/pipeline');
    check('pipeline', p, livePipeline);
    for (const [id, n] of Object.entries(p.nodes)) {
      check(`node ${id}`, n, liveNode);
      check(`node ${id}.stats`, (n as LiveNode).stats, stats);
    }
    await c.request({ action: 'tunenode', session_id: 'typed', node_id: 'gain', message: { UpdateParams: { gain: 0.5 } } });
    await fetch(server.url + '/api/v1/sessions/typed', { method: 'DELETE' });
    for (let i = 0; i < 150 && !events.some((e) => e.event === 'sessiondestroyed'); i += 1) await new Promise((r) => setTimeout(r, 20));
    const shapes: Record<string, Record<string, string>> = {
      sessioncreated: { event: 'string', session_id: 'string', name: 'string', created_at: 'string' },
      sessiondestroyed: { event: 'string', session_id: 'string' },
      nodestatechanged: { event: 'string', session_id: 'string', node_id: 'string', state: 'any', worker_pid: 'number?', restarts: 'number?', timestamp: 'string' },
      nodestatsupdated: { event: 'string', session_id: 'string', node_id: 'string', stats: 'object', timestamp: 'string' },
      nodeparamschanged: { event: 'string', session_id: 'string', node_id: 'string', params: 'object' },
      nodeadded: { event: 'string', session_id: 'string', node_id: 'string', kind: 'string', params: 'object' },
      connectionadded: { event: 'string', session_id: 'string', from_node: 'string', from_pin: 'string', to_node: 'string', to_pin: 'string' },
    };
    const seen = new Set(events.map((e) => e.event as string));
    for (const name of ['sessioncreated', 'sessiondestroyed', 'nodestatechanged', 'nodestatsupdated', 'nodeparamschanged']) expect(seen, `saw ${name}`).toContain(name);
    for (const e of events) {
      const shape = shapes[e.event as string];
      if (shape) check(`event ${e.event}`, e, shape);
    }
    c.stop();
  });
});
