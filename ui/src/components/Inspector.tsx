// The selected node: its kind, pins and a form from its params schema.
import type { NodeDefinition } from '../api/types';
import { typeLabel } from '../model/types';
import { SchemaForm } from './SchemaForm';

export function Inspector({
  nodeId,
  kind,
  def,
  params,
  onChange,
  tunableOnly,
  disabled,
  extra,
}: {
  nodeId: string;
  kind: string;
  def?: NodeDefinition;
  params: Record<string, unknown>;
  onChange: (next: Record<string, unknown>, field: string, live: boolean) => void;
  tunableOnly?: boolean;
  disabled?: boolean;
  extra?: React.ReactNode;
}) {
  return (
    <div className="inspector" data-testid="inspector">
      <h3>
        {nodeId} <small className="muted">{kind}</small>
      </h3>
      {def?.description && <p className="muted">{def.description}</p>}
      {extra}
      {def && (
        <div className="pins">
          {def.inputs.map((p) => (
            <div key={`i-${p.name}`}>
              <span className="muted">in</span> {p.name}: {p.accepts_types.map(typeLabel).join(' | ')}
            </div>
          ))}
          {def.outputs.map((p) => (
            <div key={`o-${p.name}`}>
              <span className="muted">out</span> {p.name}: {typeLabel(p.produces_type)}
            </div>
          ))}
        </div>
      )}
      {def ? (
        <SchemaForm schema={def.param_schema} value={params} onChange={onChange} tunableOnly={tunableOnly} disabled={disabled} idPrefix={`p-${nodeId}`} />
      ) : (
        <p className="field-error">Unknown node kind {kind}.</p>
      )}
    </div>
  );
}
