// Every node kind the server offers, grouped by category and searchable; drag one onto the
// canvas (or press Enter / click + to add it).
import { useMemo, useState } from 'react';
import type { NodeDefinition, PacketTypeMeta } from '../api/types';
import { colorOf } from '../model/types';

export const DND_KIND = 'application/x-skit-kind';

export function Palette({ defs, registry, onAdd }: { defs: NodeDefinition[]; registry: PacketTypeMeta[]; onAdd?: (kind: string) => void }) {
  const [query, setQuery] = useState('');
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const map = new Map<string, NodeDefinition[]>();
    for (const d of defs) {
      if (q && !d.kind.toLowerCase().includes(q) && !d.description.toLowerCase().includes(q)) continue;
      const cat = d.categories[0] ?? d.kind.split('::')[0];
      map.set(cat, [...(map.get(cat) ?? []), d]);
    }
    return [...map.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [defs, query]);
  return (
    <div className="palette" data-testid="palette">
      <input type="search" placeholder="Search nodes…" aria-label="Search nodes" value={query} onChange={(e) => setQuery(e.target.value)} />
      {groups.length === 0 && <p className="muted">No node kind matches “{query}”.</p>}
      {groups.map(([cat, list]) => (
        <section key={cat}>
          <h4>{cat}</h4>
          {list.map((d) => (
            <div
              key={d.kind}
              className="palette-item"
              draggable
              tabIndex={0}
              data-kind={d.kind}
              title={d.description}
              onDragStart={(e) => {
                e.dataTransfer.setData(DND_KIND, d.kind);
                e.dataTransfer.effectAllowed = 'move';
              }}
              onKeyDown={(e) => e.key === 'Enter' && onAdd?.(d.kind)}
            >
              <span className="pin-dot" style={{ background: colorOf(d.outputs[0]?.produces_type ?? d.inputs[0]?.accepts_types[0] ?? 'Any', registry) }} />
              <span className="palette-kind">{d.kind}</span>
              {onAdd && (
                <button type="button" className="icon" aria-label={`add ${d.kind}`} onClick={() => onAdd(d.kind)}>
                  +
                </button>
              )}
            </div>
          ))}
        </section>
      ))}
    </div>
  );
}
