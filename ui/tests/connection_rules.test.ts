// The canvas's connection check (src/model/types.ts) with the server's real node and packet
// schemas, against the server's own verdict (POST /api/v1/validate) for the same edges.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConnection, compatible, producedType, typeId } from '../src/model/types';
import { graphToYaml, parsePipelineYaml, type PipelineGraph } from '../src/model/pipeline';
import type { NodeDefinition, PacketTypeMeta } from '../src/api/types';
import { removeDir, startServer, type RunningServer } from './support/server';

let server: RunningServer;
let defs: Map<string, NodeDefinition>;
let registry: PacketTypeMeta[];

beforeAll(async () => {
  server = await startServer();
  const list: NodeDefinition[] = await (await fetch(`${server.url}/api/v1/schema/nodes`)).json();
  defs = new Map(list.map((d) => [d.kind, d]));
  registry = await (await fetch(`${server.url}/api/v1/schema/packets`)).json();
});
afterAll(async () => {
  await server.stop();
  removeDir(server.dir);
});

const graph = (yaml: string): PipelineGraph => parsePipelineYaml(yaml, (k) => defs.get(k)).graph!;

async function serverAccepts(g: PipelineGraph): Promise<boolean> {
  const r = await (await fetch(`${server.url}/api/v1/validate`, { method: 'POST', body: JSON.stringify({ yaml: graphToYaml(g) }) })).json();
  return !r.errors.some((e: { code: string }) => e.code === 'pin_type_mismatch');
}

describe('connection rules', () => {
  it('agree with the server on every pair of a decoder chain', async () => {
    const base = graph(`mode: oneshot
nodes:
  in: { kind: streamkit::http_input }
  demux: { kind: containers::ogg::demuxer }
  dec: { kind: audio::opus::decoder }
  gain: { kind: audio::gain }
  enc: { kind: audio::opus::encoder }
  mux: { kind: containers::ogg::muxer }
  pass: { kind: core::passthrough }
  out: { kind: streamkit::http_output }
`);
    const ids = base.nodes.map((n) => n.id);
    let compared = 0;
    for (const from of ids) {
      for (const to of ids) {
        const fdef = defs.get(base.nodes.find((n) => n.id === from)!.kind)!;
        const tdef = defs.get(base.nodes.find((n) => n.id === to)!.kind)!;
        if (from === to || fdef.outputs.length === 0 || tdef.inputs.length === 0) continue;
        const g: PipelineGraph = { ...base, edges: [{ from_node: from, from_pin: 'out', to_node: to, to_pin: 'in' }] };
        const mine = checkConnection(base, from, 'out', to, 'in', defs, registry).ok;
        expect(mine, `${from} -> ${to}`).toBe(await serverAccepts(g));
        compared += 1;
      }
    }
    expect(compared).toBeGreaterThan(30);
  });

  it('follows Passthrough outputs upstream', () => {
    const g = graph(`mode: oneshot
nodes:
  in: { kind: streamkit::http_input }
  demux: { kind: containers::ogg::demuxer, needs: in }
  pass: { kind: core::passthrough, needs: demux }
  gain: { kind: audio::gain }
  dec: { kind: audio::opus::decoder }
`);
    expect(typeId(producedType(g, 'pass', 'out', defs))).toBe('EncodedAudio');
    expect(checkConnection(g, 'pass', 'out', 'gain', 'in', defs, registry)).toMatchObject({ ok: false });
    expect(checkConnection(g, 'pass', 'out', 'dec', 'in', defs, registry)).toEqual({ ok: true });
  });

  it('refuses a second connection into one input, and cycles', () => {
    const g = graph(`mode: dynamic
nodes:
  a: { kind: audio::gain }
  b: { kind: audio::gain, needs: a }
  c: { kind: audio::gain }
`);
    expect(checkConnection(g, 'c', 'out', 'b', 'in', defs, registry).reason).toBe("input 'b.in' is already connected");
    expect(checkConnection(g, 'b', 'out', 'a', 'in', defs, registry).reason).toBe('connecting b to a would make a cycle');
    expect(checkConnection(g, 'a', 'out', 'a', 'in', defs, registry).reason).toBe('a node cannot feed itself');
  });

  it('treats 0 as the wildcard of raw audio fields', () => {
    const any = { RawAudio: { sample_rate: 0, channels: 0, sample_format: 'F32' } };
    expect(compatible({ RawAudio: { sample_rate: 48000, channels: 2, sample_format: 'F32' } }, any, registry)).toBe(true);
    expect(compatible({ RawAudio: { sample_rate: 48000, channels: 2, sample_format: 'F32' } }, { RawAudio: { sample_rate: 16000, channels: 0, sample_format: 'F32' } }, registry)).toBe(false);
    expect(compatible({ RawAudio: { sample_rate: 48000, channels: 2, sample_format: 'S16Le' } }, any, registry)).toBe(false);
    expect(compatible('Binary', 'Any', registry)).toBe(true);
    expect(compatible('Binary', 'Text', registry)).toBe(false);
  });
});
