// CodeMirror 6 with YAML highlighting; problems are shown as lint marks at their lines.
import { useEffect, useRef } from 'react';
import { EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, highlightActiveLine } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { yaml } from '@codemirror/lang-yaml';
import { syntaxHighlighting, HighlightStyle } from '@codemirror/language';
import { tags } from '@lezer/highlight';
import { setDiagnostics, lintGutter } from '@codemirror/lint';

// Colours readable on the dark panel.
const darkYaml = HighlightStyle.define([
  { tag: [tags.propertyName, tags.definition(tags.propertyName)], color: '#7cc4ff' },
  { tag: [tags.string, tags.special(tags.string)], color: '#a5d6a7' },
  { tag: [tags.number, tags.bool, tags.null], color: '#f0b86e' },
  { tag: tags.comment, color: '#7d8696', fontStyle: 'italic' },
  { tag: [tags.punctuation, tags.separator, tags.squareBracket, tags.brace], color: '#aab2c0' },
  { tag: [tags.keyword, tags.typeName, tags.labelName], color: '#d2a8ff' },
]);

export interface EditorProblem {
  line: number;
  message: string;
}

export function YamlEditor({
  value,
  revision,
  problems,
  onChange,
  readOnly = false,
  testId = 'yaml-editor',
}: {
  value: string;
  /** A new revision replaces the editor's text with `value`. */
  revision: number;
  problems: EditorProblem[];
  onChange?: (text: string) => void;
  readOnly?: boolean;
  testId?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          highlightActiveLine(),
          history(),
          keymap.of([...defaultKeymap, ...historyKeymap]),
          yaml(),
          syntaxHighlighting(darkYaml),
          lintGutter(),
          EditorState.readOnly.of(readOnly),
          EditorView.updateListener.of((u) => {
            if (!u.docChanged || !u.transactions.some((t) => t.isUserEvent('input') || t.isUserEvent('delete') || t.isUserEvent('undo') || t.isUserEvent('redo') || t.isUserEvent('paste') || t.isUserEvent('move'))) return;
            if (timer.current) clearTimeout(timer.current);
            const text = u.state.doc.toString();
            timer.current = setTimeout(() => onChangeRef.current?.(text), 250);
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      if (timer.current) clearTimeout(timer.current);
      v.destroy();
      view.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const v = view.current;
    if (!v || v.state.doc.toString() === value) return;
    v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [revision]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const doc = v.state.doc;
    const diagnostics = problems
      .filter((p) => p.line >= 1 && p.line <= doc.lines)
      .map((p) => {
        const line = doc.line(p.line);
        return { from: line.from, to: line.to, severity: 'error' as const, message: p.message };
      });
    v.dispatch(setDiagnostics(v.state, diagnostics));
  }, [problems]);

  return <div className="yaml-editor" ref={host} data-testid={testId} />;
}
