// The React Flow canvas over a PipelineGraph: nodes with typed pins, edges coloured by what
// flows on them, connections checked against the pin types (a refused one says why), drop
// from the palette, Delete/Backspace removes the selection.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  Background,
  Controls,
  ReactFlow,
  applyNodeChanges,
  applyEdgeChanges,
  type Connection as RfConnection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
  type ReactFlowInstance,
} from '@xyflow/react';
import type { LiveNode, NodeDefinition, PacketTypeMeta } from '../api/types';
import type { GraphEdge, PipelineGraph } from '../model/pipeline';
import { checkConnection, colorOf, producedType } from '../model/types';
import { nodeTypes, type FlowNodeData } from './FlowNode';
import { DND_KIND } from './Palette';

export const edgeId = (e: GraphEdge) => `${e.from_node}.${e.from_pin}->${e.to_node}.${e.to_pin}`;

export interface GraphCanvasProps {
  graph: PipelineGraph;
  defs: Map<string, NodeDefinition>;
  registry: PacketTypeMeta[];
  selected: string | null;
  editable: boolean;
  live?: Record<string, Partial<LiveNode>>;
  errorNodes?: Set<string>;
  onSelect: (id: string | null) => void;
  onMove?: (id: string, pos: { x: number; y: number }) => void;
  onConnect?: (e: GraphEdge) => void;
  onRefused?: (reason: string) => void;
  onRemoveNodes?: (ids: string[]) => void;
  onRemoveEdges?: (edges: GraphEdge[]) => void;
  onDropKind?: (kind: string, pos: { x: number; y: number }) => void;
  /** Every selected node (Ctrl-click or Shift-drag selects several). */
  onSelectionChange?: (ids: string[]) => void;
  testId?: string;
}

export function GraphCanvas(props: GraphCanvasProps) {
  const { graph, defs, registry, selected, editable, live, errorNodes } = props;
  const [rfNodes, setRfNodes] = useState<Node<FlowNodeData>[]>([]);
  const [rfEdges, setRfEdges] = useState<Edge[]>([]);
  const flow = useRef<ReactFlowInstance<Node<FlowNodeData>, Edge> | null>(null);
  const lastShape = useRef('');
  const lastSelected = useRef<string | null>(null);

  useEffect(() => {
    // The canvas keeps its own (multiple) selection; a new `selected` from outside (a click
    // on an error) replaces it.
    const forced = lastSelected.current !== selected;
    lastSelected.current = selected;
    setRfNodes((prev) =>
      graph.nodes.map((n) => {
        const old = prev.find((p) => p.id === n.id);
        const l = live?.[n.id];
        return {
          ...(old ?? {}),
          id: n.id,
          type: 'skit',
          position: old?.dragging ? old.position : n.position,
          selected: forced || !old ? n.id === selected : old.selected,
          deletable: editable,
          connectable: editable,
          data: {
            id: n.id,
            kind: n.kind,
            def: defs.get(n.kind),
            registry,
            connectedInputs: graph.edges.filter((e) => e.to_node === n.id).map((e) => e.to_pin),
            state: l?.state,
            stats: l?.stats,
            workerPid: l ? l.worker_pid : undefined,
            restarts: l?.restarts,
            error: errorNodes?.has(n.id),
          },
        };
      }),
    );
  }, [graph, defs, registry, selected, live, editable, errorNodes]);

  useEffect(() => {
    setRfEdges((prev) =>
      graph.edges.map((e) => {
        const id = edgeId(e);
        const old = prev.find((p) => p.id === id);
        const color = colorOf(producedType(graph, e.from_node, e.from_pin, defs), registry);
        return {
          ...(old ?? {}),
          id,
          source: e.from_node,
          sourceHandle: e.from_pin,
          target: e.to_node,
          targetHandle: e.to_pin,
          deletable: editable,
          label: e.mode === 'best_effort' ? 'best effort' : undefined,
          style: { stroke: color, strokeWidth: 2, strokeDasharray: e.mode === 'best_effort' ? '6 4' : undefined },
        };
      }),
    );
  }, [graph, defs, registry, editable]);

  // Fit the view when the set of nodes changes shape (a loaded sample), not on every edit.
  useEffect(() => {
    const shape = graph.nodes.map((n) => n.id).join(',');
    if (shape !== lastShape.current && flow.current && graph.nodes.length > 0) {
      const first = lastShape.current === '' || !graph.nodes.some((n) => lastShape.current.split(',').includes(n.id));
      lastShape.current = shape;
      if (first) setTimeout(() => flow.current?.fitView({ padding: 0.15, maxZoom: 1.1 }), 30);
    } else {
      lastShape.current = shape;
    }
  }, [graph]);

  const onNodesChange = useCallback(
    (changes: NodeChange<Node<FlowNodeData>>[]) => {
      setRfNodes((nds) => applyNodeChanges(changes, nds));
      const removed: string[] = [];
      for (const c of changes) {
        if (c.type === 'position' && c.position && c.dragging === false) props.onMove?.(c.id, c.position);
        if (c.type === 'select' && c.selected) {
          lastSelected.current = c.id;  // the canvas's own choice: keep its other selected nodes
          props.onSelect(c.id);
        }
        if (c.type === 'remove') removed.push(c.id);
      }
      if (removed.length) props.onRemoveNodes?.(removed);
    },
    [props],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      setRfEdges((eds) => applyEdgeChanges(changes, eds));
      const removed = changes.filter((c) => c.type === 'remove').map((c) => c.id);
      if (removed.length) props.onRemoveEdges?.(graph.edges.filter((e) => removed.includes(edgeId(e))));
    },
    [props, graph],
  );

  const onConnect = useCallback(
    (c: RfConnection) => {
      if (!c.source || !c.target) return;
      const fromPin = c.sourceHandle ?? 'out';
      const toPin = c.targetHandle ?? 'in';
      const check = checkConnection(graph, c.source, fromPin, c.target, toPin, defs, registry);
      if (!check.ok) {
        props.onRefused?.(`Connection refused: ${check.reason}`);
        return;
      }
      props.onConnect?.({ from_node: c.source, from_pin: fromPin, to_node: c.target, to_pin: toPin });
    },
    [graph, defs, registry, props],
  );

  // React Flow calls this from an effect on the handler's identity: it must stay the same
  // object, or every render would report the selection again.
  const selectionListener = useRef(props.onSelectionChange);
  selectionListener.current = props.onSelectionChange;
  const onSelectionChange = useCallback(({ nodes }: { nodes: Node[] }) => {
    selectionListener.current?.(nodes.map((n) => n.id));
  }, []);

  const miniHint = useMemo(() => (graph.nodes.length === 0 ? (editable ? 'Drag nodes here from the palette, or load a sample.' : 'No nodes.') : null), [graph, editable]);

  return (
    <div
      className="canvas"
      data-testid={props.testId ?? 'canvas'}
      onDragOver={(e) => {
        if (editable && e.dataTransfer.types.includes(DND_KIND)) {
          e.preventDefault();
          e.dataTransfer.dropEffect = 'move';
        }
      }}
      onDrop={(e) => {
        const kind = e.dataTransfer.getData(DND_KIND);
        if (!editable || !kind || !flow.current) return;
        e.preventDefault();
        props.onDropKind?.(kind, flow.current.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
      }}
    >
      <ReactFlow
        nodes={rfNodes}
        edges={rfEdges}
        nodeTypes={nodeTypes}
        onInit={(i) => {
          flow.current = i;
        }}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onPaneClick={() => props.onSelect(null)}
        onSelectionChange={onSelectionChange}
        deleteKeyCode={editable ? ['Delete', 'Backspace'] : null}
        nodesConnectable={editable}
        fitView
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={16} />
        <Controls showInteractive={false} />
      </ReactFlow>
      {miniHint && <div className="canvas-hint">{miniHint}</div>}
    </div>
  );
}
