// Every sample in samples/pipelines/ through the UI's YAML <-> graph conversion, compared with
// the model the real server compiles (POST /api/v1/validate): same nodes, kinds, params and
// connections, from the UI's parse and again from the YAML the UI writes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { startServer, repoRoot, readText, type RunningServer, removeDir } from './support/server';
import { graphToYaml, modelOf, parsePipelineYaml, autoLayout } from '../src/model/pipeline';
import type { CompiledPipeline, NodeDefinition, ValidateResponse } from '../src/api/types';

let server: RunningServer;
let defs: Map<string, NodeDefinition>;

async function compile(yaml: string): Promise<ValidateResponse> {
  const res = await fetch(`${server.url}/api/v1/validate`, { method: 'POST', body: JSON.stringify({ yaml }) });
  expect(res.status).toBe(200);
  return res.json();
}

function sorted<T>(list: T[]): T[] {
  return [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function comparable(p: CompiledPipeline) {
  return { mode: p.mode, nodes: p.nodes, connections: sorted(p.connections) };
}

const samples: string[] = [];
for (const sub of ['oneshot', 'dynamic']) {
  for (const f of readdirSync(path.join(repoRoot, 'samples/pipelines', sub))) {
    if (f.endsWith('.yml') || f.endsWith('.yaml')) samples.push(`${sub}/${f}`);
  }
}

beforeAll(async () => {
  // The listener samples (RTMP ingest) need their port in the configured range, as a
  // deployment that serves them has it.
  server = await startServer('transports:\n  listen_ports: "19000-19999"\n');
  const list: NodeDefinition[] = await (await fetch(`${server.url}/api/v1/schema/nodes`)).json();
  defs = new Map(list.map((d) => [d.kind, d]));
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
  removeDir(server.dir);
});

describe('YAML <-> graph', () => {
  it('finds the samples', () => {
    expect(samples.length).toBeGreaterThanOrEqual(10);
  });

  it.each(samples)('%s round-trips to the model the server compiles', async (file) => {
    const original = readText(path.join(repoRoot, 'samples/pipelines', file));
    const server_model = await compile(original);
    expect(server_model.errors).toEqual([]);
    const compiled = server_model.pipeline!;

    const parsed = parsePipelineYaml(original, (k) => defs.get(k));
    expect(parsed.problems).toEqual([]);
    const graph = autoLayout(parsed.graph!);
    const mine = modelOf(graph);
    expect(mine.mode).toBe(compiled.mode);
    expect(Object.keys(mine.nodes).sort()).toEqual(Object.keys(compiled.nodes).sort());
    for (const [id, n] of Object.entries(compiled.nodes)) {
      expect(mine.nodes[id].kind).toBe(n.kind);
      // The compiler adds num_inputs to a oneshot mixer that has none (as StreamKit's does).
      const params = { ...n.params };
      if (n.kind === 'audio::mixer' && !('num_inputs' in mine.nodes[id].params)) delete params.num_inputs;
      expect(mine.nodes[id].params).toEqual(params);
    }
    expect(sorted(mine.connections)).toEqual(sorted(compiled.connections));

    // The YAML the UI writes compiles to the same model, and parses back to the same graph.
    const written = graphToYaml(graph, (k) => defs.get(k));
    const again = await compile(written);
    expect(again.errors).toEqual([]);
    expect(comparable(again.pipeline!)).toEqual(comparable(compiled));
    const reparsed = parsePipelineYaml(written, (k) => defs.get(k));
    expect(modelOf(reparsed.graph!)).toEqual(mine);
  });

  it('a DAG with lists, best-effort needs and named pins round-trips', async () => {
    const yaml = `mode: oneshot
nodes:
  a: { kind: core::file_reader, params: { path: samples/audio/music.ogg } }
  b: { kind: core::file_reader, params: { path: samples/audio/speech.ogg } }
  da: { kind: containers::ogg::demuxer, needs: a }
  db: { kind: containers::ogg::demuxer, needs: b }
  oa: { kind: audio::opus::decoder, needs: da }
  ob: { kind: audio::opus::decoder, needs: { node: db, mode: best_effort } }
  mix: { kind: audio::mixer, needs: [oa, { node: ob, mode: best_effort }] }
  enc: { kind: audio::opus::encoder, needs: mix }
  mux: { kind: containers::ogg::muxer, needs: enc }
  out: { kind: streamkit::http_output, needs: mux }
`;
    const compiled = await compile(yaml);
    expect(compiled.errors).toEqual([]);
    const g = parsePipelineYaml(yaml, (k) => defs.get(k)).graph!;
    expect(sorted(modelOf(g).connections)).toEqual(sorted(compiled.pipeline!.connections));
    const back = await compile(graphToYaml(g, (k) => defs.get(k)));
    expect(comparable(back.pipeline!)).toEqual(comparable(compiled.pipeline!));
  });

  it('reports a YAML error at its line', () => {
    const r = parsePipelineYaml('mode: oneshot\nnodes:\n  a:\n    kind: core::sink\n   bad: [\n');
    expect(r.graph).toBeUndefined();
    expect(r.problems.length).toBeGreaterThan(0);
    expect(r.problems[0].line).toBeGreaterThanOrEqual(5);
  });

  it('reports a need of a missing node at the needing node', () => {
    const r = parsePipelineYaml('mode: dynamic\nnodes:\n  s:\n    kind: core::sink\n    needs: nowhere\n');
    expect(r.problems).toEqual([
      { message: "node 's' needs 'nowhere', which is not a node of this pipeline", line: 3, column: 1 },
    ]);
  });
});
