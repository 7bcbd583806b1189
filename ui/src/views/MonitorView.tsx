// Monitor: sessions (REST once, then WebSocket events), the selected session's graph with live
// state and stats per node (events only, no polling), live tuning, and staging: edit the
// running graph, check the edits with validatebatch, apply them as one applybatch.
import { useEffect, useMemo, useState } from 'react';
import { api } from '../api/client';
import { control } from '../api/control';
import { useDynamicSamples, useNodeDefs, usePacketTypes } from '../api/queries';
import type { BatchIssue, BatchOperation, LivePipeline } from '../api/types';
import { stateName } from '../api/types';
import { GraphCanvas } from '../components/GraphCanvas';
import { Inspector } from '../components/Inspector';
import { Modal } from '../components/Modal';
import { Palette } from '../components/Palette';
import { autoLayout, freshId, type PipelineGraph } from '../model/pipeline';
import { useApp, useCan } from '../stores/app';
import { useMonitor } from '../stores/monitor';

function graphOf(p: LivePipeline): PipelineGraph {
  return autoLayout({
    mode: 'dynamic',
    name: p.name,
    nodes: Object.entries(p.nodes).map(([id, n]) => ({ id, kind: n.kind, params: n.params ?? {}, position: { x: 0, y: 0 } })),
    edges: p.connections.map((c) => ({ ...c })),
    form: 'nodes',
    extra: {},
  });
}

/** The batch that turns `from` into `to`. */
export function batchBetween(from: PipelineGraph, to: PipelineGraph): BatchOperation[] {
  const key = (e: { from_node: string; from_pin: string; to_node: string; to_pin: string }) => `${e.from_node}.${e.from_pin}>${e.to_node}.${e.to_pin}`;
  const fromEdges = new Set(from.edges.map(key));
  const toEdges = new Set(to.edges.map(key));
  const fromNodes = new Set(from.nodes.map((n) => n.id));
  const toNodes = new Set(to.nodes.map((n) => n.id));
  const ops: BatchOperation[] = [];
  for (const e of from.edges) if (!toEdges.has(key(e))) ops.push({ action: 'disconnect', from_node: e.from_node, from_pin: e.from_pin, to_node: e.to_node, to_pin: e.to_pin });
  for (const n of from.nodes) if (!toNodes.has(n.id)) ops.push({ action: 'removenode', node_id: n.id });
  for (const n of to.nodes) if (!fromNodes.has(n.id)) ops.push({ action: 'addnode', node_id: n.id, kind: n.kind, params: n.params });
  for (const e of to.edges) if (!fromEdges.has(key(e))) ops.push({ action: 'connect', from_node: e.from_node, from_pin: e.from_pin, to_node: e.to_node, to_pin: e.to_pin, ...(e.mode ? { mode: e.mode } : {}) });
  return ops;
}

function describeOp(op: BatchOperation): string {
  switch (op.action) {
    case 'addnode': return `add ${op.node_id} (${op.kind})`;
    case 'removenode': return `remove ${op.node_id}`;
    case 'connect': return `connect ${op.from_node}.${op.from_pin} → ${op.to_node}.${op.to_pin}`;
    case 'disconnect': return `disconnect ${op.from_node}.${op.from_pin} → ${op.to_node}.${op.to_pin}`;
  }
}

export function MonitorView() {
  const m = useMonitor();
  const wsStatus = useApp((s) => s.wsStatus);
  const defsQ = useNodeDefs();
  const packetsQ = usePacketTypes();
  const defs = useMemo(() => new Map((defsQ.data ?? []).map((d) => [d.kind, d])), [defsQ.data]);
  const canCreate = useCan('create_sessions');
  const canDestroy = useCan('destroy_sessions');
  const canModify = useCan('modify_sessions');
  const canTune = useCan('tune_nodes');
  const [filter, setFilter] = useState('');
  const [creating, setCreating] = useState(false);
  const [destroying, setDestroying] = useState<string | null>(null);
  const [selectedNode, setSelectedNode] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [staging, setStaging] = useState<PipelineGraph | null>(null);
  const [issues, setIssues] = useState<BatchIssue[] | null>(null);
  const [tuneError, setTuneError] = useState<string | null>(null);

  // The list over REST when the view opens and after every (re)connect; events do the rest.
  useEffect(() => {
    if (wsStatus !== 'open') return;
    let cancelled = false;
    api.sessions().then((s) => !cancelled && m.setSessions(s)).catch((e) => setError((e as Error).message));
    const sel = useMonitor.getState().selected;
    if (sel) api.pipeline(sel).then((p) => !cancelled && m.setPipeline(p)).catch(() => m.select(null));
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [wsStatus]);

  const open = async (id: string) => {
    m.select(id);
    setSelectedNode(null);
    setStaging(null);
    setIssues(null);
    try {
      m.setPipeline(await api.pipeline(id));
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const liveGraph = useMemo(() => (m.pipeline ? graphOf(m.pipeline) : null), [m.structure, m.pipeline === null]); // eslint-disable-line react-hooks/exhaustive-deps
  const graph = staging ?? liveGraph;
  const session = m.sessions.find((s) => s.id === m.selected);
  const node = graph?.nodes.find((n) => n.id === selectedNode);
  const liveNode = selectedNode ? m.pipeline?.nodes[selectedNode] : undefined;
  const stagedNew = !!staging && !!selectedNode && !liveNode;
  const ops = staging && liveGraph ? batchBetween(liveGraph, staging) : [];
  const shown = m.sessions.filter((s) => !filter || s.name.includes(filter) || s.id.includes(filter));

  const validateOps = async (): Promise<BatchIssue[]> => {
    const r = await control().request({ action: 'validatebatch', session_id: m.selected!, operations: ops });
    const found = r.action === 'validationresult' ? r.errors : [];
    setIssues(found);
    return found;
  };

  const applyOps = async () => {
    setError(null);
    try {
      const found = await validateOps();
      if (found.some((i) => i.error_type === 'error')) return;
      const r = await control().request({ action: 'applybatch', session_id: m.selected!, operations: ops });
      if (r.action === 'batchapplied' && !r.success) {
        setIssues(r.errors.map((message) => ({ error_type: 'error', message })));
        return;
      }
      // No REST re-read here: the batch's own events (nodeadded, connectionadded, the new
      // nodes' state changes) update the live graph, and a snapshot read now could arrive after
      // a newer state event and overwrite it (a new node stuck at Initializing).
      setStaging(null);
      setIssues(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const tune = async (field: string, value: unknown, live: boolean) => {
    if (!m.selected || !selectedNode) return;
    setTuneError(null);
    const message = { UpdateParams: { [field]: value } };
    if (live) {
      control().send({ action: 'tunenodeasync', session_id: m.selected, node_id: selectedNode, message });
      return;
    }
    try {
      await control().request({ action: 'tunenode', session_id: m.selected, node_id: selectedNode, message });
    } catch (e) {
      setTuneError((e as Error).message);
    }
  };

  return (
    <div className="monitor">
      <aside className="left-pane">
        <div className="row">
          <h4 className="grow">Sessions</h4>
          {canCreate && <button type="button" className="primary" onClick={() => setCreating(true)}>New session</button>}
        </div>
        <input type="search" placeholder="Filter…" aria-label="Filter sessions" value={filter} onChange={(e) => setFilter(e.target.value)} />
        <ul className="session-list" data-testid="session-list">
          {shown.map((s) => (
            <li key={s.id} className={s.id === m.selected ? 'active' : ''} data-testid={`session-${s.name}`}>
              <button type="button" className="link grow" onClick={() => open(s.id)}>
                <strong>{s.name}</strong>
                <small className="muted">{new Date(s.created_at).toLocaleTimeString()}</small>
              </button>
              {canDestroy && (
                <button type="button" className="danger icon" aria-label={`destroy ${s.name}`} onClick={() => setDestroying(s.id)}>✕</button>
              )}
            </li>
          ))}
          {shown.length === 0 && <li className="muted">No sessions.</li>}
        </ul>
        {staging && defsQ.data && (
          <>
            <h4>Add a node</h4>
            <Palette defs={defsQ.data.filter((d) => !d.kind.startsWith('streamkit::'))} registry={packetsQ.data ?? []} onAdd={(kind) => {
              const id = freshId(staging, kind);
              setStaging({ ...staging, nodes: [...staging.nodes, { id, kind, params: {}, position: { x: 60, y: 40 + staging.nodes.length * 40 } }] });
            }} />
          </>
        )}
      </aside>
      <main className="center-pane">
        {error && <div className="notice error" role="alert" onClick={() => setError(null)}>{error}</div>}
        {session && graph ? (
          <>
            <div className="toolbar">
              <strong data-testid="session-title">{session.name}</strong>
              <small className="muted">{session.id}</small>
              <span className="grow" />
              {canModify && !staging && <button type="button" onClick={() => { setStaging(structuredClone(liveGraph!)); setIssues(null); }}>Edit (staging)</button>}
              {staging && (
                <>
                  <span className="badge">staging: {ops.length} change{ops.length === 1 ? '' : 's'}</span>
                  <button type="button" onClick={() => validateOps().catch((e) => setError((e as Error).message))} disabled={ops.length === 0}>Validate</button>
                  <button type="button" className="primary" onClick={applyOps} disabled={ops.length === 0}>Apply</button>
                  <button type="button" onClick={() => { setStaging(null); setIssues(null); }}>Discard</button>
                </>
              )}
            </div>
            {staging && ops.length > 0 && (
              <ol className="ops" data-testid="staged-ops">
                {ops.map((op, i) => (
                  <li key={i}>{describeOp(op)}</li>
                ))}
              </ol>
            )}
            {issues && (
              <ul className="diagnostics" data-testid="batch-issues">
                {issues.length === 0 && <li>The batch is valid.</li>}
                {issues.map((x, i) => (
                  <li key={i}>
                    <button type="button" className="link" onClick={() => x.node_id && setSelectedNode(x.node_id)}>
                      {x.operation !== undefined ? `operation ${x.operation + 1}: ` : ''}{x.message}
                    </button>
                  </li>
                ))}
              </ul>
            )}
            <GraphCanvas
              testId="monitor-canvas"
              graph={graph}
              defs={defs}
              registry={packetsQ.data ?? []}
              selected={selectedNode}
              editable={!!staging}
              live={staging ? undefined : m.pipeline?.nodes}
              onSelect={setSelectedNode}
              onMove={(id, pos) => staging && setStaging({ ...staging, nodes: staging.nodes.map((n) => (n.id === id ? { ...n, position: pos } : n)) })}
              onConnect={(e) => staging && setStaging({ ...staging, edges: [...staging.edges, e] })}
              onRefused={(r) => setError(r)}
              onRemoveNodes={(ids) => staging && setStaging({ ...staging, nodes: staging.nodes.filter((n) => !ids.includes(n.id)), edges: staging.edges.filter((e) => !ids.includes(e.from_node) && !ids.includes(e.to_node)) })}
              onRemoveEdges={(es) => staging && setStaging({ ...staging, edges: staging.edges.filter((e) => !es.some((x) => x.from_node === e.from_node && x.to_node === e.to_node && x.from_pin === e.from_pin && x.to_pin === e.to_pin)) })}
            />
            {m.timeline.length > 0 && (
              <ul className="timeline" data-testid="timeline">
                {m.timeline.slice(-4).map((t, i) => (
                  <li key={i}><small className="muted">{new Date(t.at).toLocaleTimeString()}</small> {t.text}</li>
                ))}
              </ul>
            )}
          </>
        ) : (
          <div className="canvas-hint static">{m.sessions.length ? 'Select a session.' : 'No sessions yet.'}</div>
        )}
      </main>
      <aside className="right-pane">
        {node ? (
          <Inspector
            nodeId={node.id}
            kind={node.kind}
            def={defs.get(node.kind)}
            params={stagedNew ? node.params : liveNode?.params ?? node.params}
            tunableOnly={!stagedNew}
            disabled={!stagedNew && !canTune}
            extra={
              liveNode ? (
                <dl className="node-facts" data-testid="node-facts">
                  <dt>state</dt><dd data-testid="inspector-state">{stateName(liveNode.state)}</dd>
                  <dt>worker</dt><dd>pid {liveNode.worker_pid || '—'}, {liveNode.restarts} restart{liveNode.restarts === 1 ? '' : 's'}</dd>
                  <dt>packets</dt><dd>{liveNode.stats.received} in, {liveNode.stats.sent} out, {liveNode.stats.discarded} dropped</dd>
                </dl>
              ) : undefined
            }
            onChange={(next, field, live) => {
              // A node added in staging takes its params with its addnode; a running one is
              // tuned live (a batch has no param changes).
              if (stagedNew) {
                setStaging({ ...staging, nodes: staging.nodes.map((n) => (n.id === node.id ? { ...n, params: next } : n)) });
              } else {
                void tune(field, next[field], live);
              }
            }}
          />
        ) : (
          <p className="muted">{session ? 'Select a node to see it and tune it.' : ''}</p>
        )}
        {tuneError && <p className="field-error" role="alert">{tuneError}</p>}
      </aside>
      {creating && <CreateSession onClose={() => setCreating(false)} onCreated={(id) => { setCreating(false); void open(id); }} />}
      {destroying && (
        <Modal title="Destroy session" onClose={() => setDestroying(null)}>
          <p>Destroy <strong>{m.sessions.find((s) => s.id === destroying)?.name}</strong>? Its pipeline stops and its workers exit.</p>
          <div className="row end">
            <button type="button" onClick={() => setDestroying(null)}>Cancel</button>
            <button type="button" className="danger" data-testid="confirm-destroy" onClick={async () => {
              const id = destroying;
              setDestroying(null);
              try {
                await api.destroySession(id);
              } catch (e) {
                setError((e as Error).message);
              }
            }}>Destroy</button>
          </div>
        </Modal>
      )}
    </div>
  );
}

function CreateSession({ onClose, onCreated }: { onClose: () => void; onCreated: (id: string) => void }) {
  const samples = useDynamicSamples();
  const [name, setName] = useState('');
  const [yaml, setYaml] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <Modal title="New session" onClose={onClose}>
      <form onSubmit={async (e) => {
        e.preventDefault();
        try {
          const r = await api.createSession(name.trim() || undefined, yaml);
          onCreated(r.session_id);
        } catch (err) {
          setError((err as Error).message);
        }
      }}>
        <label>Name <input autoFocus value={name} placeholder="generated when empty" onChange={(e) => setName(e.target.value)} /></label>
        <label>From a sample{' '}
          <select aria-label="sample" defaultValue="" onChange={(e) => setYaml(samples.data?.find((s) => s.id === e.target.value)?.yaml ?? '')}>
            <option value="">(empty session)</option>
            {samples.data?.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
          </select>
        </label>
        <label>YAML <textarea rows={10} value={yaml} onChange={(e) => setYaml(e.target.value)} spellCheck={false} /></label>
        {error && <pre className="field-error">{error}</pre>}
        <div className="row end">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" className="primary">Create</button>
        </div>
      </form>
    </Modal>
  );
}
