// A pipeline node on the canvas: its kind, typed pins coloured by packet type, and in the
// Monitor view its state, stats, worker pid and restarts.
import { Handle, Position, type NodeProps, type Node } from '@xyflow/react';
import type { NodeDefinition, NodeStats, NodeState, PacketTypeMeta } from '../api/types';
import { stateName, stateReason } from '../api/types';
import { colorOf, typeLabel } from '../model/types';

export interface FlowNodeData extends Record<string, unknown> {
  id: string;
  kind: string;
  def?: NodeDefinition;
  registry: PacketTypeMeta[];
  /** Input pins in use (in_0, in_1 of a dynamic family). */
  connectedInputs: string[];
  state?: NodeState;
  stats?: NodeStats;
  workerPid?: number;
  restarts?: number;
  error?: boolean;
}

function inputPins(d: FlowNodeData): { name: string; color: string; label: string }[] {
  const pins: { name: string; color: string; label: string }[] = [];
  for (const p of d.def?.inputs ?? []) {
    const color = colorOf(p.accepts_types[0] ?? 'Any', d.registry);
    const label = p.accepts_types.map(typeLabel).join(' | ');
    if (typeof p.cardinality === 'object') {
      const used = d.connectedInputs.filter((n) => n.startsWith(`${p.name}_`)).sort();
      for (const u of used) pins.push({ name: u, color, label });
      let i = 0;
      while (used.includes(`${p.name}_${i}`)) i += 1;
      pins.push({ name: `${p.name}_${i}`, color, label });
    } else {
      pins.push({ name: p.name, color, label });
    }
  }
  return pins;
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function FlowNode({ data, selected }: NodeProps<Node<FlowNodeData>>) {
  const ins = inputPins(data);
  const outs = data.def?.outputs ?? [];
  const state = data.state ? stateName(data.state) : undefined;
  const reason = stateReason(data.state);
  const rows = Math.max(ins.length, outs.length, 1);
  return (
    <div
      className={`flow-node${selected ? ' selected' : ''}${data.error ? ' has-error' : ''}${state ? ` state-${state.toLowerCase()}` : ''}`}
      style={{ minHeight: 44 + rows * 18 }}
      data-testid={`node-${data.id}`}
      data-state={state}
    >
      <div className="flow-node-title">
        <strong>{data.id}</strong>
        {state && (
          <span className={`state-badge state-${state.toLowerCase()}`} title={reason} data-testid={`state-${data.id}`}>
            {state}
          </span>
        )}
      </div>
      <div className="flow-node-kind">{data.kind}</div>
      {data.stats && (
        <div className="flow-node-stats" data-testid={`stats-${data.id}`}>
          in {data.stats.received} · out {data.stats.sent}
          {data.stats.discarded > 0 && <> · drop {data.stats.discarded}</>}
          <br />
          {fmtBytes(data.stats.bytes_in ?? 0)} → {fmtBytes(data.stats.bytes_out ?? 0)}
        </div>
      )}
      {data.workerPid !== undefined && (
        <div className="flow-node-worker" data-testid={`worker-${data.id}`}>
          pid {data.workerPid || '—'} · restarts {data.restarts ?? 0}
        </div>
      )}
      {ins.map((p, i) => (
        <Handle
          key={p.name}
          type="target"
          position={Position.Left}
          id={p.name}
          title={`${p.name}: ${p.label}`}
          style={{ top: 30 + i * 18, background: p.color }}
        />
      ))}
      {outs.map((p, i) => (
        <Handle
          key={p.name}
          type="source"
          position={Position.Right}
          id={p.name}
          title={`${p.name}: ${typeLabel(p.produces_type)}`}
          style={{ top: 30 + i * 18, background: colorOf(p.produces_type, data.registry) }}
        />
      ))}
    </div>
  );
}

export const nodeTypes = { skit: FlowNode };
