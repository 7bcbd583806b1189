// A form generated from a node's params JSON Schema: numbers with their range (a slider when
// the param is tunable and bounded), enums as selects, booleans as checkboxes, strings as
// text, anything else as JSON. Values equal to the default are left out of the params.
import { useEffect, useState } from 'react';
import type { JsonSchema } from '../api/types';

export interface SchemaFormProps {
  schema: JsonSchema;
  value: Record<string, unknown>;
  onChange: (next: Record<string, unknown>, field: string, live: boolean) => void;
  /** Only tunable params are editable (a running node). */
  tunableOnly?: boolean;
  disabled?: boolean;
  idPrefix?: string;
}

export function fieldError(schema: JsonSchema, v: unknown): string | null {
  if (v === undefined || v === '') return null;
  const t = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (t === 'number' || t === 'integer') {
    if (typeof v !== 'number' || Number.isNaN(v)) return 'must be a number';
    if (t === 'integer' && !Number.isInteger(v)) return 'must be a whole number';
    if (schema.minimum !== undefined && v < schema.minimum) return `must be >= ${schema.minimum}`;
    if (schema.maximum !== undefined && v > schema.maximum) return `must be <= ${schema.maximum}`;
  }
  if (schema.enum && !schema.enum.some((e) => e === v)) return `must be one of ${schema.enum.join(', ')}`;
  return null;
}

function NumberField({
  id,
  schema,
  value,
  disabled,
  onValue,
}: {
  id: string;
  schema: JsonSchema;
  value: unknown;
  disabled: boolean;
  onValue: (v: number | undefined, live: boolean) => void;
}) {
  const current = typeof value === 'number' ? value : (schema.default as number | undefined);
  const [text, setText] = useState(current === undefined ? '' : String(current));
  useEffect(() => setText(current === undefined ? '' : String(current)), [current]);
  const integer = schema.type === 'integer';
  const bounded = schema.minimum !== undefined && schema.maximum !== undefined;
  const step = schema.multipleOf ?? (integer ? 1 : bounded ? ((schema.maximum! - schema.minimum!) / 100) : 'any');
  const error = fieldError(schema, text === '' ? undefined : Number(text));
  return (
    <div className="field-number">
      {schema.tunable && bounded && (
        <input
          type="range"
          aria-label={`${id} slider`}
          data-testid={`slider-${id}`}
          min={schema.minimum}
          max={schema.maximum}
          step={step}
          value={current ?? schema.minimum}
          disabled={disabled}
          onChange={(e) => {
            setText(e.target.value);
            onValue(Number(e.target.value), true);
          }}
          onPointerUp={(e) => onValue(Number((e.target as HTMLInputElement).value), false)}
          onKeyUp={(e) => onValue(Number((e.target as HTMLInputElement).value), false)}
        />
      )}
      <input
        id={id}
        type="number"
        min={schema.minimum}
        max={schema.maximum}
        step={step}
        value={text}
        placeholder={schema.default === undefined ? '' : String(schema.default)}
        disabled={disabled}
        aria-invalid={error !== null}
        onChange={(e) => {
          setText(e.target.value);
          const n = e.target.value === '' ? undefined : Number(e.target.value);
          if (fieldError(schema, n) === null) onValue(n, false);
        }}
      />
      {error && <span className="field-error" role="alert">{error}</span>}
    </div>
  );
}

export function SchemaForm({ schema, value, onChange, tunableOnly = false, disabled = false, idPrefix = 'param' }: SchemaFormProps) {
  const props = Object.entries(schema.properties ?? {});
  if (props.length === 0) return <p className="muted">This node has no parameters.</p>;
  const set = (key: string, v: unknown, live: boolean) => {
    const next = { ...value };
    if (v === undefined) delete next[key];
    else next[key] = v;
    onChange(next, key, live);
  };
  return (
    <form className="schema-form" onSubmit={(e) => e.preventDefault()}>
      {props.map(([key, s]) => {
        const id = `${idPrefix}-${key}`;
        const off = disabled || (tunableOnly && !s.tunable);
        const t = Array.isArray(s.type) ? s.type[0] : s.type;
        const v = value[key];
        let input;
        if (s.enum) {
          input = (
            <select id={id} value={v === undefined ? '' : String(v)} disabled={off} onChange={(e) => {
              const chosen = s.enum!.find((x) => String(x) === e.target.value);
              set(key, e.target.value === '' ? undefined : chosen, false);
            }}>
              <option value="">{s.default === undefined ? '(unset)' : `default (${String(s.default)})`}</option>
              {s.enum.map((opt) => (
                <option key={String(opt)} value={String(opt)}>{String(opt)}</option>
              ))}
            </select>
          );
        } else if (t === 'number' || t === 'integer') {
          input = <NumberField id={id} schema={s} value={v} disabled={off} onValue={(n, live) => set(key, n, live)} />;
        } else if (t === 'boolean') {
          input = (
            <input id={id} type="checkbox" checked={typeof v === 'boolean' ? v : Boolean(s.default)} disabled={off}
              onChange={(e) => set(key, e.target.checked, false)} />
          );
        } else if (t === 'string') {
          input = (
            <input id={id} type={s.writeOnly ? 'password' : 'text'} autoComplete={s.writeOnly ? 'off' : undefined}
              value={typeof v === 'string' ? v : ''} placeholder={s.default === undefined ? '' : String(s.default)}
              disabled={off} onChange={(e) => set(key, e.target.value === '' ? undefined : e.target.value, false)} />
          );
        } else {
          input = <JsonField id={id} value={v} disabled={off} onValue={(x) => set(key, x, false)} />;
        }
        return (
          <div className="form-row" key={key}>
            <label htmlFor={id} title={s.description}>
              {key}
              {s.tunable && <span className="badge tunable" title="can be changed while the node runs">live</span>}
            </label>
            {input}
            {s.description && <small className="muted">{s.description}</small>}
          </div>
        );
      })}
    </form>
  );
}

function JsonField({ id, value, disabled, onValue }: { id: string; value: unknown; disabled: boolean; onValue: (v: unknown) => void }) {
  const [text, setText] = useState(value === undefined ? '' : JSON.stringify(value));
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <textarea id={id} rows={2} value={text} disabled={disabled} onChange={(e) => {
        setText(e.target.value);
        if (e.target.value.trim() === '') {
          setError(null);
          onValue(undefined);
          return;
        }
        try {
          onValue(JSON.parse(e.target.value));
          setError(null);
        } catch {
          setError('not valid JSON');
        }
      }} />
      {error && <span className="field-error" role="alert">{error}</span>}
    </>
  );
}
