// Packet types: colours and the compatibility rule of the server (StreamKit's
// packet_meta::can_connect): Any on either side; same id; and for struct types every listed
// field equal unless either side holds the wildcard (0, null or absent).
import type { NodeDefinition, PacketType, PacketTypeMeta } from '../api/types';
import type { PipelineGraph } from './pipeline';

export function typeId(t: PacketType): string {
  return typeof t === 'string' ? t : Object.keys(t)[0] ?? 'Any';
}

function fieldsOf(t: PacketType): Record<string, unknown> {
  return typeof t === 'string' ? {} : (Object.values(t)[0] ?? {});
}

export function typeLabel(t: PacketType): string {
  const id = typeId(t);
  const f = fieldsOf(t);
  const shown = Object.entries(f)
    .filter(([, v]) => v !== null && v !== 0 && v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`);
  return shown.length ? `${id} (${shown.join(', ')})` : id;
}

export function compatible(produced: PacketType, accepted: PacketType, registry: PacketTypeMeta[]): boolean {
  const a = typeId(produced);
  const b = typeId(accepted);
  if (a === 'Any' || b === 'Any' || a === 'Passthrough' || b === 'Passthrough') return true;
  if (a !== b) return false;
  const meta = registry.find((m) => m.id === a);
  if (!meta || meta.compatibility.kind !== 'structfieldwildcard') return true;
  const fa = fieldsOf(produced);
  const fb = fieldsOf(accepted);
  for (const f of meta.compatibility.fields ?? []) {
    const va = fa[f.name];
    const vb = fb[f.name];
    const wild = (v: unknown) => v === undefined || v === null || (f.wildcard_value !== undefined && v === f.wildcard_value);
    if (wild(va) || wild(vb)) continue;
    if (va !== vb) return false;
  }
  return true;
}

/** What an output pin produces in this graph, following Passthrough pins upstream. */
export function producedType(
  g: PipelineGraph,
  nodeId: string,
  pin: string,
  defs: Map<string, NodeDefinition>,
  seen = new Set<string>(),
): PacketType {
  const node = g.nodes.find((n) => n.id === nodeId);
  const def = node ? defs.get(node.kind) : undefined;
  const out = def?.outputs.find((o) => o.name === pin) ?? def?.outputs[0];
  if (!out) return 'Any';
  if (typeId(out.produces_type) !== 'Passthrough') return out.produces_type;
  if (seen.has(nodeId)) return 'Any';
  seen.add(nodeId);
  const up = g.edges.find((e) => e.to_node === nodeId);
  return up ? producedType(g, up.from_node, up.from_pin, defs, seen) : 'Any';
}

export interface ConnectCheck {
  ok: boolean;
  reason?: string;
}

/** Whether from.fromPin -> to.toPin may be added to the graph, and why not. */
export function checkConnection(
  g: PipelineGraph,
  from: string,
  fromPin: string,
  to: string,
  toPin: string,
  defs: Map<string, NodeDefinition>,
  registry: PacketTypeMeta[],
): ConnectCheck {
  if (from === to) return { ok: false, reason: 'a node cannot feed itself' };
  const target = g.nodes.find((n) => n.id === to);
  const tdef = target ? defs.get(target.kind) : undefined;
  const input = tdef?.inputs.find((i) => i.name === toPin || (typeof i.cardinality === 'object' && toPin.startsWith(`${i.name}_`)));
  if (!input) return { ok: false, reason: `${to} has no input '${toPin}'` };
  if (g.edges.some((e) => e.to_node === to && e.to_pin === toPin)) {
    return { ok: false, reason: `input '${to}.${toPin}' is already connected` };
  }
  // A cycle: `to` reaches `from` already.
  const reach = new Set<string>([to]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const e of g.edges) if (reach.has(e.from_node) && !reach.has(e.to_node)) {
      reach.add(e.to_node);
      grew = true;
    }
  }
  if (reach.has(from)) return { ok: false, reason: `connecting ${from} to ${to} would make a cycle` };
  const produced = producedType(g, from, fromPin, defs);
  if (!input.accepts_types.some((t) => compatible(produced, t, registry))) {
    return {
      ok: false,
      reason: `${from}.${fromPin} produces ${typeLabel(produced)} but ${to}.${toPin} accepts ${input.accepts_types.map(typeLabel).join(' or ')}`,
    };
  }
  return { ok: true };
}

export function colorOf(t: PacketType, registry: PacketTypeMeta[]): string {
  return registry.find((m) => m.id === typeId(t))?.color ?? '#96ceb4';
}
