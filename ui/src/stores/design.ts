// The Design view's document: the graph is the truth, the YAML text its rendering, and an
// edit on either side updates the other (a YAML edit that does not parse keeps the last
// graph and shows its problems at their lines).
import { create } from 'zustand';
import type { NodeDefinition } from '../api/types';
import {
  autoLayout,
  emptyGraph,
  freshId,
  graphToYaml,
  parsePipelineYaml,
  type GraphEdge,
  type PipelineGraph,
  type YamlProblem,
} from '../model/pipeline';

interface DesignState {
  graph: PipelineGraph;
  yaml: string;
  /** Bumped when the YAML changes for a reason other than typing in the editor. */
  yamlRevision: number;
  problems: YamlProblem[];
  selected: string | null;
  defs: Map<string, NodeDefinition>;
  notice: string | null;
  setDefs: (defs: NodeDefinition[]) => void;
  loadYaml: (text: string) => boolean;
  editYaml: (text: string) => void;
  setGraph: (g: PipelineGraph) => void;
  addNode: (kind: string, position: { x: number; y: number }) => string;
  removeNodes: (ids: string[]) => void;
  connect: (e: GraphEdge) => void;
  removeEdges: (edges: GraphEdge[]) => void;
  moveNode: (id: string, position: { x: number; y: number }) => void;
  updateParams: (id: string, params: Record<string, unknown>) => void;
  select: (id: string | null) => void;
  layout: () => void;
  setNotice: (n: string | null) => void;
  insertFragment: (yaml: string) => string | null;
}

const sameEdge = (a: GraphEdge, b: GraphEdge) =>
  a.from_node === b.from_node && a.from_pin === b.from_pin && a.to_node === b.to_node && a.to_pin === b.to_pin;

export const useDesign = create<DesignState>((set, get) => {
  const lookup = (k: string) => get().defs.get(k);
  const commit = (graph: PipelineGraph, extra: Partial<DesignState> = {}) =>
    set((s) => ({ graph, yaml: graphToYaml(graph, lookup), yamlRevision: s.yamlRevision + 1, problems: [], ...extra }));
  return {
    graph: emptyGraph('oneshot'),
    yaml: graphToYaml(emptyGraph('oneshot')),
    yamlRevision: 0,
    problems: [],
    selected: null,
    defs: new Map(),
    notice: null,
    setDefs: (defs) => set({ defs: new Map(defs.map((d) => [d.kind, d])) }),
    loadYaml: (text) => {
      const r = parsePipelineYaml(text, lookup);
      if (!r.graph) {
        set((s) => ({ yaml: text, yamlRevision: s.yamlRevision + 1, problems: r.problems }));
        return false;
      }
      set((s) => ({ graph: autoLayout(r.graph!), yaml: text, yamlRevision: s.yamlRevision + 1, problems: [], selected: null }));
      return true;
    },
    editYaml: (text) => {
      const r = parsePipelineYaml(text, lookup);
      if (!r.graph) {
        set({ yaml: text, problems: r.problems });
        return;
      }
      // Keep where the user put the nodes that are still there; lay out the new ones.
      const old = new Map(get().graph.nodes.map((n) => [n.id, n.position]));
      const laid = autoLayout(r.graph);
      const graph = {
        ...laid,
        nodes: laid.nodes.map((n) => ({ ...n, position: old.get(n.id) ?? n.position })),
      };
      const selected = get().selected;
      set({ graph, yaml: text, problems: [], selected: selected && graph.nodes.some((n) => n.id === selected) ? selected : null });
    },
    setGraph: (g) => commit(g),
    addNode: (kind, position) => {
      const g = get().graph;
      const id = freshId(g, kind);
      commit({ ...g, form: 'nodes', nodes: [...g.nodes, { id, kind, params: {}, position }] }, { selected: id });
      return id;
    },
    removeNodes: (ids) => {
      const g = get().graph;
      const gone = new Set(ids);
      commit(
        { ...g, form: 'nodes', nodes: g.nodes.filter((n) => !gone.has(n.id)), edges: g.edges.filter((e) => !gone.has(e.from_node) && !gone.has(e.to_node)) },
        { selected: gone.has(get().selected ?? '') ? null : get().selected },
      );
    },
    connect: (e) => {
      const g = get().graph;
      commit({ ...g, form: 'nodes', edges: [...g.edges, e] });
    },
    removeEdges: (edges) => {
      const g = get().graph;
      commit({ ...g, form: 'nodes', edges: g.edges.filter((e) => !edges.some((x) => sameEdge(x, e))) });
    },
    moveNode: (id, position) => {
      const g = get().graph;
      set({ graph: { ...g, nodes: g.nodes.map((n) => (n.id === id ? { ...n, position } : n)) } });
    },
    updateParams: (id, params) => {
      const g = get().graph;
      commit({ ...g, nodes: g.nodes.map((n) => (n.id === id ? { ...n, params } : n)) });
    },
    select: (id) => set({ selected: id }),
    layout: () => set({ graph: autoLayout(get().graph) }),
    setNotice: (notice) => set({ notice }),
    insertFragment: (yaml) => {
      const r = parsePipelineYaml(yaml, lookup);
      if (!r.graph) return r.problems[0]?.message ?? 'the fragment does not parse';
      const g = get().graph;
      const taken = new Set(g.nodes.map((n) => n.id));
      const rename = new Map<string, string>();
      for (const n of r.graph.nodes) {
        let id = n.id;
        for (let i = 2; taken.has(id); i += 1) id = `${n.id}_${i}`;
        taken.add(id);
        rename.set(n.id, id);
      }
      const laid = autoLayout(r.graph);
      const dy = Math.max(0, ...g.nodes.map((n) => n.position.y)) + 140;
      commit({
        ...g,
        form: 'nodes',
        nodes: [...g.nodes, ...laid.nodes.map((n) => ({ ...n, id: rename.get(n.id)!, position: { x: n.position.x, y: n.position.y + dy } }))],
        edges: [...g.edges, ...laid.edges.map((e) => ({ ...e, from_node: rename.get(e.from_node)!, to_node: rename.get(e.to_node)! }))],
      });
      return null;
    },
  };
});
