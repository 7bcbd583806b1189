// The Monitor view's live data: sessions and the selected session's pipeline, read over REST
// once (on entering, on selecting, after a reconnect) and then kept current by the WebSocket
// events alone.
import { create } from 'zustand';
import type { ControlEvent, LiveNode, LivePipeline, SessionInfo } from '../api/types';

const zeroStats = { received: 0, sent: 0, discarded: 0, errored: 0, duration_secs: 0, bytes_in: 0, bytes_out: 0, telemetry_dropped: 0 };

interface MonitorState {
  sessions: SessionInfo[];
  selected: string | null;
  pipeline: LivePipeline | null;
  /** Bumped when nodes or connections change (the layout is redone then). */
  structure: number;
  /** Restart events seen, newest last (shown as they happen). */
  timeline: { at: string; text: string }[];
  setSessions: (s: SessionInfo[]) => void;
  select: (id: string | null) => void;
  setPipeline: (p: LivePipeline | null) => void;
  apply: (e: ControlEvent) => void;
}

function withNode(p: LivePipeline, id: string, f: (n: LiveNode) => LiveNode): LivePipeline {
  const n = p.nodes[id];
  if (!n) return p;
  return { ...p, nodes: { ...p.nodes, [id]: f(n) } };
}

export const useMonitor = create<MonitorState>((set, get) => ({
  sessions: [],
  selected: null,
  pipeline: null,
  structure: 0,
  timeline: [],
  setSessions: (sessions) => set({ sessions }),
  select: (selected) => set({ selected, pipeline: null, timeline: [] }),
  setPipeline: (pipeline) => set((s) => ({ pipeline, structure: s.structure + 1 })),
  apply: (e) => {
    const s = get();
    if (e.event === 'sessioncreated') {
      if (!s.sessions.some((x) => x.id === e.session_id)) {
        set({ sessions: [...s.sessions, { id: e.session_id, name: e.name, created_at: e.created_at }] });
      }
      return;
    }
    if (e.event === 'sessiondestroyed') {
      set({
        sessions: s.sessions.filter((x) => x.id !== e.session_id),
        ...(s.selected === e.session_id ? { selected: null, pipeline: null } : {}),
      });
      return;
    }
    if (!s.pipeline || e.session_id !== s.selected) return;
    const p = s.pipeline;
    switch (e.event) {
      case 'nodestatechanged': {
        const old = p.nodes[e.node_id];
        const timeline = [...s.timeline];
        const name = typeof e.state === 'string' ? e.state : Object.keys(e.state)[0];
        if (old && (name === 'Recovering' || name === 'Failed' || (old.restarts ?? 0) !== (e.restarts ?? old.restarts))) {
          timeline.push({ at: e.timestamp, text: `${e.node_id}: ${name}${e.worker_pid ? ` (worker ${e.worker_pid})` : ''}` });
        }
        set({
          pipeline: withNode(p, e.node_id, (n) => ({
            ...n,
            state: e.state,
            worker_pid: e.worker_pid ?? n.worker_pid,
            restarts: e.restarts ?? n.restarts,
          })),
          timeline: timeline.slice(-50),
        });
        return;
      }
      case 'nodestatsupdated':
        set({ pipeline: withNode(p, e.node_id, (n) => ({ ...n, stats: { ...n.stats, ...e.stats } })) });
        return;
      case 'nodeparamschanged':
        set({ pipeline: withNode(p, e.node_id, (n) => ({ ...n, params: e.params })) });
        return;
      case 'nodeadded':
        set({
          pipeline: {
            ...p,
            nodes: { ...p.nodes, [e.node_id]: { kind: e.kind, params: e.params ?? {}, state: 'Initializing', stats: zeroStats, worker_pid: 0, restarts: 0 } },
          },
          structure: s.structure + 1,
        });
        return;
      case 'noderemoved': {
        const nodes = { ...p.nodes };
        delete nodes[e.node_id];
        set({
          pipeline: { ...p, nodes, connections: p.connections.filter((c) => c.from_node !== e.node_id && c.to_node !== e.node_id) },
          structure: s.structure + 1,
        });
        return;
      }
      case 'connectionadded':
        if (p.connections.some((c) => c.from_node === e.from_node && c.from_pin === e.from_pin && c.to_node === e.to_node && c.to_pin === e.to_pin)) return;
        set({
          pipeline: { ...p, connections: [...p.connections, { from_node: e.from_node, from_pin: e.from_pin, to_node: e.to_node, to_pin: e.to_pin }] },
          structure: s.structure + 1,
        });
        return;
      case 'connectionremoved':
        set({
          pipeline: {
            ...p,
            connections: p.connections.filter(
              (c) => !(c.from_node === e.from_node && c.from_pin === e.from_pin && c.to_node === e.to_node && c.to_pin === e.to_pin),
            ),
          },
          structure: s.structure + 1,
        });
        return;
      default:
        return;
    }
  },
}));
