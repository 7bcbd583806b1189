// YAML <-> graph. Parsing follows the server's compiler (supervisor/src/pipeline_compiler.cpp,
// StreamKit's section B): `steps:` become step_0..step_N chained out -> in; `needs:` is a node
// id ("a", "a.pin"), a list (to in_0, in_1, ...), {node, mode}, or a map keyed by target pin.
// Writing produces the DAG form (or `steps:` for a chain that came from steps), so a graph
// edited on the canvas and its YAML compile to the same model.
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { Connection, NodeDefinition } from '../api/types';

export interface GraphNode {
  id: string;
  kind: string;
  params: Record<string, unknown>;
  isolation?: 'dedicated';
  position: { x: number; y: number };
  /** 1-based line of the node in the YAML it came from. */
  line?: number;
}

export type GraphEdge = Connection;

export interface PipelineGraph {
  name?: string;
  description?: string;
  mode: 'oneshot' | 'dynamic';
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** The document used `steps:` (written back that way while it stays a chain). */
  form: 'steps' | 'nodes';
  /** Other top-level keys (client, tags, ...), kept as they were. */
  extra: Record<string, unknown>;
}

export interface YamlProblem {
  message: string;
  line: number;
  column: number;
}

export type DefinitionLookup = (kind: string) => NodeDefinition | undefined;

export function emptyGraph(mode: 'oneshot' | 'dynamic' = 'oneshot'): PipelineGraph {
  return { mode, nodes: [], edges: [], form: 'nodes', extra: {} };
}

const KNOWN_TOP = new Set(['name', 'description', 'mode', 'steps', 'nodes']);

/** Parses pipeline YAML to a graph; problems carry their line (the graph is absent then). */
export function parsePipelineYaml(
  text: string,
  lookup?: DefinitionLookup,
): { graph?: PipelineGraph; problems: YamlProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, keepSourceTokens: false, uniqueKeys: true });
  const problems: YamlProblem[] = [];
  const at = (node: YamlNode | null | undefined, message: string) => {
    const offset = node?.range?.[0] ?? 0;
    const pos = lines.linePos(offset);
    problems.push({ message, line: pos.line, column: pos.col });
  };
  for (const e of doc.errors) {
    const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
    problems.push({ message: e.message.split('\n')[0], line: pos.line, column: pos.col });
  }
  if (problems.length > 0) return { problems };
  const root = doc.contents;
  if (root === null || root === undefined) {
    return { graph: emptyGraph(), problems };
  }
  if (!isMap(root)) {
    at(root, 'a pipeline is a mapping with steps: or nodes:');
    return { problems };
  }
  const plain = doc.toJS() as Record<string, unknown>;
  const graph = emptyGraph();
  graph.mode = plain.mode === 'oneshot' ? 'oneshot' : 'dynamic';
  if (plain.mode !== undefined && plain.mode !== 'oneshot' && plain.mode !== 'dynamic') {
    at(root.get('mode', true) as YamlNode, `mode must be oneshot or dynamic (got '${String(plain.mode)}')`);
  }
  if (typeof plain.name === 'string') graph.name = plain.name;
  if (typeof plain.description === 'string') graph.description = plain.description;
  for (const [k, v] of Object.entries(plain)) if (!KNOWN_TOP.has(k)) graph.extra[k] = v;

  const lineOf = (node: YamlNode | null | undefined) => lines.linePos(node?.range?.[0] ?? 0).line;
  const stepsNode = root.get('steps', true) as YamlNode | undefined;
  const nodesNode = root.get('nodes', true) as YamlNode | undefined;
  if (stepsNode && nodesNode) at(nodesNode, "use either 'steps' or 'nodes', not both");

  const paramsOf = (v: unknown, where: YamlNode | undefined): Record<string, unknown> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) {
      at(where, 'params must be a mapping');
      return {};
    }
    return v as Record<string, unknown>;
  };

  if (stepsNode) {
    graph.form = 'steps';
    if (!isSeq(stepsNode)) {
      at(stepsNode, 'steps must be a list of {kind, params?}');
      return { problems };
    }
    stepsNode.items.forEach((item, i) => {
      const js = (item as YamlNode & { toJSON(): unknown }).toJSON() as Record<string, unknown>;
      if (!isMap(item) || typeof js.kind !== 'string') {
        at(item as YamlNode, `step ${i} needs a kind`);
        return;
      }
      const id = `step_${i}`;
      graph.nodes.push({
        id,
        kind: js.kind,
        params: paramsOf(js.params, item.get('params', true) as YamlNode),
        isolation: js.isolation === 'dedicated' ? 'dedicated' : undefined,
        position: { x: 0, y: 0 },
        line: lineOf(item as YamlNode),
      });
      if (i > 0) graph.edges.push({ from_node: `step_${i - 1}`, from_pin: 'out', to_node: id, to_pin: 'in' });
    });
  } else if (nodesNode) {
    if (!isMap(nodesNode)) {
      at(nodesNode, 'nodes must be a mapping of node id to {kind, params?, needs?}');
      return { problems };
    }
    for (const pair of nodesNode.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const body = pair.value as YamlNode | null;
      const js = (body && isMap(body) ? body.toJSON() : {}) as Record<string, unknown>;
      if (!body || !isMap(body) || typeof js.kind !== 'string') {
        at((body ?? pair.key) as YamlNode, `node '${key}' needs a kind`);
        continue;
      }
      const def = lookup?.(js.kind);
      graph.nodes.push({
        id: key,
        kind: js.kind,
        params: paramsOf(js.params, body.get('params', true) as YamlNode),
        isolation: js.isolation === 'dedicated' ? 'dedicated' : undefined,
        position: { x: 0, y: 0 },
        line: lineOf(pair.key as YamlNode),
      });
      const needs = body.get('needs', true) as YamlNode | undefined;
      if (needs !== undefined && needs !== null) {
        for (const e of edgesFromNeeds(key, needs, def, at)) graph.edges.push(e);
      }
    }
    const ids = new Set(graph.nodes.map((n) => n.id));
    for (const e of graph.edges) {
      if (!ids.has(e.from_node)) {
        const n = graph.nodes.find((x) => x.id === e.to_node);
        problems.push({
          message: `node '${e.to_node}' needs '${e.from_node}', which is not a node of this pipeline`,
          line: n?.line ?? 1,
          column: 1,
        });
      }
    }
  }
  if (problems.length > 0) return { problems };
  return { graph, problems };
}

function refToSource(ref: string): { node: string; pin: string } {
  const dot = ref.indexOf('.');
  return dot < 0 ? { node: ref, pin: 'out' } : { node: ref.slice(0, dot), pin: ref.slice(dot + 1) };
}

function isDynamicFamily(def: NodeDefinition | undefined, pin: string): boolean {
  const p = def?.inputs.find((i) => i.name === pin);
  return !!p && typeof p.cardinality === 'object' && 'Dynamic' in p.cardinality;
}

function edgesFromNeeds(
  target: string,
  needs: YamlNode,
  def: NodeDefinition | undefined,
  at: (n: YamlNode | undefined, m: string) => void,
): GraphEdge[] {
  const out: GraphEdge[] = [];
  const single = (pin: string) => (pin === 'in' && isDynamicFamily(def, 'in') ? 'in_0' : pin);
  const fromObject = (obj: YamlNode): { node: string; pin: string; mode?: 'best_effort' } | undefined => {
    if (!isMap(obj)) return undefined;
    const js = obj.toJSON() as Record<string, unknown>;
    if (typeof js.node !== 'string') {
      at(obj, "a needs entry must name a 'node'");
      return undefined;
    }
    const src = refToSource(js.node);
    if (js.mode !== undefined && js.mode !== 'reliable' && js.mode !== 'best_effort') {
      at(obj, `connection mode must be 'reliable' or 'best_effort' (got '${String(js.mode)}')`);
    }
    return { ...src, mode: js.mode === 'best_effort' ? 'best_effort' : undefined };
  };
  const push = (src: { node: string; pin: string; mode?: 'best_effort' }, toPin: string) => {
    const e: GraphEdge = { from_node: src.node, from_pin: src.pin, to_node: target, to_pin: toPin };
    if (src.mode) e.mode = src.mode;
    out.push(e);
  };
  if (isScalar(needs)) {
    if (needs.value === null) return out;
    push(refToSource(String(needs.value)), single('in'));
  } else if (isSeq(needs)) {
    const items = needs.items as YamlNode[];
    items.forEach((item, i) => {
      const src = isScalar(item) ? refToSource(String(item.value)) : fromObject(item);
      if (!src) {
        at(item, 'a needs entry must be a node id or {node, mode}');
        return;
      }
      push(src, items.length === 1 ? single('in') : `in_${i}`);
    });
  } else if (isMap(needs)) {
    const js = needs.toJSON() as Record<string, unknown>;
    if ('node' in js) {
      const src = fromObject(needs);
      if (src) push(src, single('in'));
    } else {
      for (const [pin, ref] of Object.entries(js)) {
        if (typeof ref !== 'string') {
          at(needs, 'a pin-keyed needs entry must name a node');
          continue;
        }
        push(refToSource(ref), pin);
      }
    }
  } else {
    at(needs, 'needs must be a node id, a list or a mapping');
  }
  return out;
}

/** The `needs:` value that compiles back to these incoming edges of one node. */
function needsOf(incoming: GraphEdge[], def: NodeDefinition | undefined): unknown {
  if (incoming.length === 0) return undefined;
  const ref = (e: GraphEdge) => (e.from_pin === 'out' ? e.from_node : `${e.from_node}.${e.from_pin}`);
  const item = (e: GraphEdge) => (e.mode === 'best_effort' ? { node: ref(e), mode: 'best_effort' } : ref(e));
  if (incoming.length === 1) {
    const e = incoming[0];
    const natural = e.to_pin === 'in' || (e.to_pin === 'in_0' && isDynamicFamily(def, 'in'));
    if (natural) return item(e);
  }
  const sorted = [...incoming].sort((a, b) => pinIndex(a.to_pin) - pinIndex(b.to_pin));
  const contiguous = sorted.length > 1 && sorted.every((e, i) => e.to_pin === `in_${i}`);
  if (contiguous) return sorted.map(item);
  const map: Record<string, unknown> = {};
  for (const e of sorted) map[e.to_pin] = ref(e);
  return map;
}

function pinIndex(pin: string): number {
  const m = /_(\d+)$/.exec(pin);
  return m ? Number(m[1]) : -1;
}

function isStepChain(g: PipelineGraph): boolean {
  if (g.nodes.length === 0) return false;
  if (!g.nodes.every((n, i) => n.id === `step_${i}`)) return false;
  if (g.edges.length !== g.nodes.length - 1) return false;
  return g.edges.every(
    (e) =>
      e.from_pin === 'out' &&
      e.to_pin === 'in' &&
      !e.mode &&
      Number(e.to_node.slice(5)) === Number(e.from_node.slice(5)) + 1,
  );
}

/** The graph as pipeline YAML (the DAG form, or `steps:` for an unbroken chain of steps). */
export function graphToYaml(g: PipelineGraph, lookup?: DefinitionLookup): string {
  const top: Record<string, unknown> = {};
  if (g.name) top.name = g.name;
  if (g.description) top.description = g.description;
  top.mode = g.mode;
  if (g.form === 'steps' && isStepChain(g)) {
    top.steps = g.nodes.map((n) => {
      const s: Record<string, unknown> = { kind: n.kind };
      if (Object.keys(n.params).length > 0) s.params = n.params;
      if (n.isolation) s.isolation = n.isolation;
      return s;
    });
  } else {
    const nodes: Record<string, unknown> = {};
    for (const n of g.nodes) {
      const body: Record<string, unknown> = { kind: n.kind };
      if (Object.keys(n.params).length > 0) body.params = n.params;
      if (n.isolation) body.isolation = n.isolation;
      const needs = needsOf(
        g.edges.filter((e) => e.to_node === n.id),
        lookup?.(n.kind),
      );
      if (needs !== undefined) body.needs = needs;
      nodes[n.id] = body;
    }
    top.nodes = nodes;
  }
  Object.assign(top, g.extra);
  const doc = new Document(top);
  return doc.toString({ lineWidth: 0, flowCollectionPadding: true, indentSeq: true });
}

/** Layered left-to-right layout: a node's column is its longest path from a source; past
 * `maxColumns` the layers fold into bands below, so that a long chain stays readable. */
export function autoLayout(g: PipelineGraph, maxColumns = 4): PipelineGraph {
  const layer = new Map<string, number>();
  const incoming = new Map<string, string[]>();
  for (const n of g.nodes) incoming.set(n.id, []);
  for (const e of g.edges) incoming.get(e.to_node)?.push(e.from_node);
  const visiting = new Set<string>();
  const depth = (id: string): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0;  // a cycle: cut it here
    visiting.add(id);
    const d = Math.max(-1, ...(incoming.get(id) ?? []).map(depth)) + 1;
    visiting.delete(id);
    layer.set(id, d);
    return d;
  };
  g.nodes.forEach((n) => depth(n.id));
  const rows = new Map<number, number>();
  const rowOf = new Map<string, number>();
  for (const n of g.nodes) {
    const col = layer.get(n.id) ?? 0;
    const row = rows.get(col) ?? 0;
    rows.set(col, row + 1);
    rowOf.set(n.id, row);
  }
  // The height of each band: its tallest layer.
  const bandRows = new Map<number, number>();
  for (const [col, count] of rows) {
    const band = Math.floor(col / maxColumns);
    bandRows.set(band, Math.max(bandRows.get(band) ?? 0, count));
  }
  const bandTop = (band: number) => {
    let y = 40;
    for (let b = 0; b < band; b += 1) y += (bandRows.get(b) ?? 1) * 120 + 40;
    return y;
  };
  const nodes = g.nodes.map((n) => {
    const col = layer.get(n.id) ?? 0;
    const band = Math.floor(col / maxColumns);
    return { ...n, position: { x: 40 + (col % maxColumns) * 250, y: bandTop(band) + (rowOf.get(n.id) ?? 0) * 120 } };
  });
  return { ...g, nodes };
}

/** A fresh node id for `kind`: "gain", "gain_2", ... */
export function freshId(g: PipelineGraph, kind: string): string {
  const base = (kind.split('::').pop() ?? 'node').replace(/[^A-Za-z0-9_]/g, '_');
  const ids = new Set(g.nodes.map((n) => n.id));
  if (!ids.has(base)) return base;
  for (let i = 2; ; i += 1) if (!ids.has(`${base}_${i}`)) return `${base}_${i}`;
}

/** The graph as the compiled model's comparable parts (for tests and the staging diff). */
export function modelOf(g: PipelineGraph) {
  const nodes: Record<string, { kind: string; params: Record<string, unknown> }> = {};
  for (const n of g.nodes) nodes[n.id] = { kind: n.kind, params: n.params };
  const connections = g.edges
    .map((e) => ({ ...e, mode: e.mode === 'best_effort' ? 'best_effort' : undefined }))
    .map((e) => (e.mode ? e : { from_node: e.from_node, from_pin: e.from_pin, to_node: e.to_node, to_pin: e.to_pin }));
  return { mode: g.mode, nodes, connections };
}
