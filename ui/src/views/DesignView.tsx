// Design: palette | canvas | YAML + inspector. The canvas and the YAML edit one document.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { api, ApiError } from '../api/client';
import { useNodeDefs, useOneshotSamples, useDynamicSamples, usePacketTypes } from '../api/queries';
import type { Diagnostic, NodeDefinition, SamplePipeline } from '../api/types';
import { GraphCanvas } from '../components/GraphCanvas';
import { Inspector } from '../components/Inspector';
import { Palette } from '../components/Palette';
import { YamlEditor } from '../components/YamlEditor';
import { Modal } from '../components/Modal';
import { useDesign } from '../stores/design';
import { useCan } from '../stores/app';
import { graphToYaml, type PipelineGraph } from '../model/pipeline';

function SamplesPane({ onLoad }: { onLoad: (s: SamplePipeline) => void }) {
  const oneshot = useOneshotSamples();
  const dynamic = useDynamicSamples();
  const qc = useQueryClient();
  const canDelete = useCan('delete_samples');
  const [query, setQuery] = useState('');
  const all = [...(oneshot.data ?? []), ...(dynamic.data ?? []).filter((d) => !(oneshot.data ?? []).some((o) => o.id === d.id))];
  const q = query.toLowerCase();
  const shown = all.filter((s) => !q || s.name.toLowerCase().includes(q) || s.description.toLowerCase().includes(q));
  const error = oneshot.error ?? dynamic.error;
  return (
    <div className="samples" data-testid="samples-pane">
      <input type="search" placeholder="Search samples…" aria-label="Search samples" value={query} onChange={(e) => setQuery(e.target.value)} />
      {error && <p className="field-error">{(error as Error).message}</p>}
      {shown.map((s) => (
        <div key={s.id} className="sample-card" data-testid={`sample-${s.id}`}>
          <div className="sample-head">
            <strong>{s.name}</strong>
            <span className={`badge mode-${s.mode}`}>{s.is_fragment ? 'fragment' : s.mode}</span>
            {!s.is_system && <span className="badge">user</span>}
          </div>
          {s.description && <p className="muted">{s.description}</p>}
          <div className="row">
            <button type="button" onClick={() => onLoad(s)}>{s.is_fragment ? 'Insert' : 'Load'}</button>
            {!s.is_system && canDelete && (
              <button type="button" className="danger" onClick={async () => {
                if (!window.confirm(`Delete the sample “${s.name}”?`)) return;
                await api.deleteSample(s.id);
                await qc.invalidateQueries({ queryKey: ['samples'] });
              }}>Delete</button>
            )}
          </div>
        </div>
      ))}
    </div>
  );
}

export function DesignView() {
  const defsQ = useNodeDefs();
  const packetsQ = usePacketTypes();
  const d = useDesign();
  const qc = useQueryClient();
  const canSave = useCan('write_samples');
  const [leftTab, setLeftTab] = useState<'nodes' | 'samples'>('nodes');
  const [diagnostics, setDiagnostics] = useState<Diagnostic[] | null>(null);
  const [validating, setValidating] = useState(false);
  const [saving, setSaving] = useState<null | { fragment: boolean }>(null);
  const [selection, setSelection] = useState<string[]>([]);
  const fileInput = useRef<HTMLInputElement>(null);
  const registry = packetsQ.data ?? [];
  // A validation result describes the YAML it was asked about.
  useEffect(() => setDiagnostics(null), [d.yaml]);
  const selectedNode = d.graph.nodes.find((n) => n.id === d.selected);
  const errorNodes = useMemo(() => new Set((diagnostics ?? []).map((x) => x.node).filter(Boolean) as string[]), [diagnostics]);

  const validate = async () => {
    setValidating(true);
    try {
      const r = await api.validate(d.yaml);
      setDiagnostics(r.errors);
      d.setNotice(r.valid ? 'Valid: the server compiles this pipeline.' : null);
    } catch (e) {
      setDiagnostics([{ message: (e as Error).message, code: 'request' }]);
    } finally {
      setValidating(false);
    }
  };

  const load = (s: SamplePipeline) => {
    setDiagnostics(null);
    if (s.is_fragment) {
      const err = d.insertFragment(s.yaml);
      d.setNotice(err ? `The fragment could not be inserted: ${err}` : `Inserted the fragment “${s.name}”.`);
    } else {
      d.loadYaml(s.yaml);
      d.setNotice(`Loaded “${s.name}”.`);
    }
  };

  const exportYaml = () => {
    const blob = new Blob([d.yaml], { type: 'application/yaml' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${(d.graph.name ?? 'pipeline').replace(/[^A-Za-z0-9_-]+/g, '_')}.yml`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  return (
    <div className="design">
      <aside className="left-pane">
        <div className="tabs" role="tablist">
          <button role="tab" aria-selected={leftTab === 'nodes'} onClick={() => setLeftTab('nodes')}>Nodes</button>
          <button role="tab" aria-selected={leftTab === 'samples'} onClick={() => setLeftTab('samples')}>Samples</button>
        </div>
        {leftTab === 'nodes' ? (
          defsQ.data ? (
            <Palette defs={defsQ.data} registry={registry} onAdd={(kind) => d.addNode(kind, { x: 80 + d.graph.nodes.length * 30, y: 60 + d.graph.nodes.length * 30 })} />
          ) : (
            <p className="muted">{defsQ.error ? (defsQ.error as Error).message : 'Loading node kinds…'}</p>
          )
        ) : (
          <SamplesPane onLoad={load} />
        )}
      </aside>
      <main className="center-pane">
        <div className="toolbar">
          <label>
            mode{' '}
            <select aria-label="mode" value={d.graph.mode} onChange={(e) => d.setGraph({ ...d.graph, mode: e.target.value as 'oneshot' | 'dynamic' })}>
              <option value="oneshot">oneshot</option>
              <option value="dynamic">dynamic</option>
            </select>
          </label>
          <button type="button" onClick={validate} disabled={validating}>{validating ? 'Validating…' : 'Validate'}</button>
          <button type="button" onClick={() => d.layout()}>Auto-layout</button>
          <button type="button" onClick={() => fileInput.current?.click()}>Import</button>
          <input ref={fileInput} type="file" accept=".yml,.yaml,text/yaml" hidden data-testid="import-file" onChange={async (e) => {
            const f = e.target.files?.[0];
            if (f) {
              const ok = d.loadYaml(await f.text());
              d.setNotice(ok ? `Imported ${f.name}.` : `${f.name} has problems (see the YAML pane).`);
            }
            e.target.value = '';
          }} />
          <button type="button" onClick={exportYaml}>Export</button>
          {canSave && <button type="button" onClick={() => setSaving({ fragment: false })}>Save…</button>}
          {canSave && (
            <button type="button" onClick={() => setSaving({ fragment: true })} disabled={d.graph.nodes.length === 0}
              title="Save the selected nodes (or the whole graph) as a fragment to insert into other pipelines">
              Fragment…
            </button>
          )}
          <button type="button" onClick={() => { d.loadYaml(graphToYaml({ mode: d.graph.mode, nodes: [], edges: [], form: 'nodes', extra: {} })); setDiagnostics(null); }}>New</button>
        </div>
        {d.notice && (
          <div className="notice" role="status" onClick={() => d.setNotice(null)}>{d.notice}</div>
        )}
        {diagnostics && diagnostics.length > 0 && (
          <ul className="diagnostics" data-testid="diagnostics">
            {diagnostics.map((x, i) => (
              <li key={i}>
                <button type="button" className="link" onClick={() => x.node && d.select(x.node)}>
                  {x.line ? `line ${x.line}: ` : ''}{x.node ? `[${x.node}] ` : ''}{x.message}
                </button>
              </li>
            ))}
          </ul>
        )}
        <GraphCanvas
          graph={d.graph}
          defs={d.defs}
          registry={registry}
          selected={d.selected}
          editable
          errorNodes={errorNodes}
          onSelect={d.select}
          onMove={d.moveNode}
          onConnect={(e) => { d.connect(e); d.setNotice(null); }}
          onRefused={(reason) => d.setNotice(reason)}
          onRemoveNodes={d.removeNodes}
          onRemoveEdges={d.removeEdges}
          onDropKind={(kind, pos) => d.addNode(kind, pos)}
          onSelectionChange={(ids) => setSelection((old) => (old.length === ids.length && old.every((x, i) => x === ids[i]) ? old : ids))}
        />
      </main>
      <aside className="right-pane">
        <section className="yaml-pane">
          <h4>YAML</h4>
          <YamlEditor value={d.yaml} revision={d.yamlRevision} problems={d.problems} onChange={d.editYaml} />
          {d.problems.length > 0 && (
            <ul className="problems" data-testid="yaml-problems">
              {d.problems.map((p, i) => (
                <li key={i}>line {p.line}: {p.message}</li>
              ))}
            </ul>
          )}
        </section>
        <section className="inspector-pane">
          {selectedNode ? (
            <Inspector
              nodeId={selectedNode.id}
              kind={selectedNode.kind}
              def={d.defs.get(selectedNode.kind)}
              params={selectedNode.params}
              onChange={(next) => d.updateParams(selectedNode.id, next)}
            />
          ) : (
            <p className="muted">Select a node to edit its parameters.</p>
          )}
        </section>
      </aside>
      {saving && (
        <SaveDialog
          fragment={saving.fragment}
          yaml={saving.fragment ? fragmentYaml(d.graph, selection, d.defs) : d.yaml}
          count={saving.fragment ? (selection.length || d.graph.nodes.length) : undefined}
          onClose={() => setSaving(null)}
          onSaved={async (name) => {
            setSaving(null);
            d.setNotice(`Saved “${name}”.`);
            await qc.invalidateQueries({ queryKey: ['samples'] });
          }}
        />
      )}
    </div>
  );
}

/** The selected nodes (all when none is) and the connections among them, as a fragment. */
function fragmentYaml(g: PipelineGraph, selection: string[], defs: Map<string, NodeDefinition>): string {
  const keep = new Set(selection.length ? selection : g.nodes.map((n) => n.id));
  const sub: PipelineGraph = {
    mode: g.mode,
    form: 'nodes',
    extra: {},
    nodes: g.nodes.filter((n) => keep.has(n.id)),
    edges: g.edges.filter((e) => keep.has(e.from_node) && keep.has(e.to_node)),
  };
  return graphToYaml(sub, (k) => defs.get(k));
}

function SaveDialog({ fragment, yaml, count, onClose, onSaved }: { fragment: boolean; yaml: string; count?: number; onClose: () => void; onSaved: (name: string) => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [overwrite, setOverwrite] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Modal title={fragment ? `Save ${count} node${count === 1 ? '' : 's'} as a fragment` : 'Save pipeline'} onClose={onClose}>
      <form onSubmit={async (e) => {
        e.preventDefault();
        try {
          await api.saveSample({ name, description, yaml, overwrite, is_fragment: fragment });
          onSaved(name);
        } catch (err) {
          setError(err instanceof ApiError && err.status === 409 ? `${err.message}` : (err as Error).message);
        }
      }}>
        <label>Name <input autoFocus required value={name} onChange={(e) => setName(e.target.value)} /></label>
        <label>Description <input value={description} onChange={(e) => setDescription(e.target.value)} /></label>
        <label className="inline"><input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} /> replace a sample of that name</label>
        {error && <pre className="field-error">{error}</pre>}
        <div className="row end">
          <button type="button" onClick={onClose}>Cancel</button>
          <button type="submit" className="primary">Save</button>
        </div>
      </form>
    </Modal>
  );
}
