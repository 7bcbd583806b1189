// @vitest-environment jsdom
// The form generated from a node's params JSON Schema: the real schemas of audio::gain and
// audio::opus::encoder (read from the server), ranges enforced, enums as selects, tunable
// params as sliders, only tunables editable on a running node.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { act, cleanup, fireEvent, render } from '@testing-library/react';
import { SchemaForm, fieldError } from '../src/components/SchemaForm';
import type { JsonSchema, NodeDefinition } from '../src/api/types';
import { removeDir, startServer, type RunningServer } from './support/server';

let server: RunningServer;
let defs: Map<string, NodeDefinition>;

beforeAll(async () => {
  server = await startServer();
  const list: NodeDefinition[] = await (await fetch(`${server.url}/api/v1/schema/nodes`)).json();
  defs = new Map(list.map((d) => [d.kind, d]));
});
afterAll(async () => {
  cleanup();
  await server.stop();
  removeDir(server.dir);
});

const schemaOf = (kind: string): JsonSchema => defs.get(kind)!.param_schema;

describe('SchemaForm', () => {
  it('renders a tunable bounded number as a slider and a number input', () => {
    const onChange = vi.fn();
    const { container } = render(<SchemaForm schema={schemaOf('audio::gain')} value={{ gain: 2 }} onChange={onChange} idPrefix="g" />);
    const slider = container.querySelector('input[type=range]') as HTMLInputElement;
    const number = container.querySelector('#g-gain') as HTMLInputElement;
    expect(slider.min).toBe('0');
    expect(slider.max).toBe('4');
    expect(number.value).toBe('2');
    expect(container.textContent).toContain('live');
    act(() => {
      fireEvent.change(slider, { target: { value: '0.5' } });
    });
    expect(onChange).toHaveBeenLastCalledWith({ gain: 0.5 }, 'gain', true);
    act(() => {
      fireEvent.change(number, { target: { value: '3' } });
    });
    expect(onChange).toHaveBeenLastCalledWith({ gain: 3 }, 'gain', false);
    cleanup();
  });

  it('refuses a number outside its range and says why', () => {
    const onChange = vi.fn();
    const { container } = render(<SchemaForm schema={schemaOf('audio::gain')} value={{}} onChange={onChange} idPrefix="g" />);
    const number = container.querySelector('#g-gain') as HTMLInputElement;
    act(() => {
      fireEvent.change(number, { target: { value: '9' } });
    });
    expect(onChange).not.toHaveBeenCalled();
    expect(container.querySelector('[role=alert]')?.textContent).toBe('must be <= 4');
    expect(number.getAttribute('aria-invalid')).toBe('true');
    cleanup();
  });

  it('renders enums as selects and integers with their bounds', () => {
    const schema = schemaOf('audio::opus::encoder');
    const enumKey = Object.entries(schema.properties ?? {}).find(([, s]) => s.enum)?.[0];
    expect(enumKey).toBeDefined();
    const onChange = vi.fn();
    const { container } = render(<SchemaForm schema={schema} value={{}} onChange={onChange} idPrefix="e" />);
    const select = container.querySelector(`#e-${enumKey}`) as HTMLSelectElement;
    expect(select.tagName).toBe('SELECT');
    const options = [...select.options].map((o) => o.value).filter(Boolean);
    expect(options).toEqual(schema.properties![enumKey!].enum!.map(String));
    act(() => {
      fireEvent.change(select, { target: { value: options[options.length - 1] } });
    });
    expect(onChange).toHaveBeenLastCalledWith({ [enumKey!]: schema.properties![enumKey!].enum![options.length - 1] }, enumKey, false);
    const bitrate = container.querySelector('#e-bitrate') as HTMLInputElement;
    expect(Number(bitrate.min)).toBe(schema.properties!.bitrate.minimum);
    expect(Number(bitrate.max)).toBe(schema.properties!.bitrate.maximum);
    cleanup();
  });

  it('leaves only tunable params editable on a running node', () => {
    const { container } = render(<SchemaForm schema={schemaOf('core::pacer')} value={{}} onChange={() => {}} tunableOnly idPrefix="p" />);
    expect((container.querySelector('#p-speed') as HTMLInputElement).disabled).toBe(false);
    expect((container.querySelector('#p-buffer_size') as HTMLInputElement).disabled).toBe(true);
    cleanup();
  });

  it('takes secret params (writeOnly) in a password field', () => {
    const schema = schemaOf('transport::rtmp::listen');
    expect(schema.properties?.stream_key?.writeOnly).toBe(true);
    const { container } = render(<SchemaForm schema={schema} value={{}} onChange={() => {}} idPrefix="r" />);
    expect((container.querySelector('#r-stream_key') as HTMLInputElement).type).toBe('password');
    expect((container.querySelector('#r-app') as HTMLInputElement).type).toBe('text');
    cleanup();
  });

  it('checks values like the server', () => {
    const s: JsonSchema = { type: 'integer', minimum: 1, maximum: 10 };
    expect(fieldError(s, 5)).toBeNull();
    expect(fieldError(s, 0)).toBe('must be >= 1');
    expect(fieldError(s, 2.5)).toBe('must be a whole number');
    expect(fieldError({ enum: ['a', 'b'] }, 'c')).toBe('must be one of a, b');
  });
});
