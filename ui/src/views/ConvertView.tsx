// Convert: a oneshot pipeline (a sample or pasted YAML), an input (a file, an audio asset, or
// typed text), POST /api/v1/process with upload and download progress, and the result: an
// audio player, a text/JSON view, and a download.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { uploadWithProgress, request } from '../api/client';
import { useAudioAssets, useOneshotSamples } from '../api/queries';
import { useCan } from '../stores/app';
import { parsePipelineYaml } from '../model/pipeline';

interface Result {
  url: string;
  contentType: string;
  size: number;
  text?: string;
  fileName: string;
}

const size = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);

const extensionOf = (ct: string) =>
  ct.includes('ogg') ? 'ogg' : ct.includes('webm') ? 'webm' : ct.includes('wav') ? 'wav' : ct.includes('flac') ? 'flac' : ct.includes('mpeg') ? 'mp3' : ct.includes('mp4') ? 'm4a' : ct.includes('json') ? 'json' : ct.startsWith('text/') ? 'txt' : 'bin';

export function ConvertView() {
  const samples = useOneshotSamples();
  const assets = useAudioAssets();
  const qc = useQueryClient();
  const canRun = useCan('process_oneshot');
  const canUpload = useCan('upload_assets');
  const pipelines = (samples.data ?? []).filter((s) => s.mode === 'oneshot' && !s.is_fragment);
  const [sampleId, setSampleId] = useState('');
  const [yaml, setYaml] = useState('');
  const [inputKind, setInputKind] = useState<'file' | 'asset' | 'text'>('file');
  const [file, setFile] = useState<File | null>(null);
  const [assetId, setAssetId] = useState('');
  const [text, setText] = useState('');
  const [progress, setProgress] = useState<{ sent: number; total: number; received: number; phase: string } | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<string | null>(null);

  const chosen = useRef(false);
  useEffect(() => {
    // The volume boost (or the first sample) until the user picks or pastes something.
    if (!chosen.current && pipelines.length) {
      chosen.current = true;
      const boost = pipelines.find((p) => p.id === 'oneshot/volume_boost') ?? pipelines[0];
      setSampleId(boost.id);
      setYaml(boost.yaml);
    }
  }, [pipelines]);
  useEffect(() => () => { if (result) URL.revokeObjectURL(result.url); }, [result]);

  const needsMedia = useMemo(() => {
    const g = parsePipelineYaml(yaml).graph;
    return g ? g.nodes.some((n) => n.kind === 'streamkit::http_input') : true;
  }, [yaml]);

  const run = async () => {
    setError(null);
    setResult(null);
    try {
      const form = new FormData();
      form.append('config', new Blob([yaml], { type: 'application/yaml' }), 'pipeline.yml');
      if (needsMedia) {
        let media: Blob | null = null;
        let name = 'input';
        if (inputKind === 'file') {
          media = file;
          name = file?.name ?? name;
        } else if (inputKind === 'asset') {
          const a = assets.data?.find((x) => x.id === assetId);
          if (a) {
            setProgress({ sent: 0, total: 0, received: 0, phase: `fetching ${a.name}` });
            media = await (await request(a.url)).blob();
            name = a.id;
          }
        } else {
          media = new Blob([text], { type: 'text/plain' });
          name = 'input.txt';
        }
        if (!media) {
          setError('Choose an input first.');
          setProgress(null);
          return;
        }
        form.append('media', media, name);
      }
      setProgress({ sent: 0, total: 1, received: 0, phase: 'uploading' });
      const r = await uploadWithProgress(
        '/api/v1/process',
        form,
        (sent, total) => setProgress({ sent, total, received: 0, phase: sent >= total ? 'processing' : 'uploading' }),
        (received) => setProgress((p) => ({ ...(p ?? { sent: 0, total: 0 }), received, phase: 'receiving' })),
      );
      const isText = r.contentType.startsWith('text/') || r.contentType.includes('json');
      setResult({
        url: URL.createObjectURL(r.body),
        contentType: r.contentType,
        size: r.body.size,
        text: isText ? await r.body.text() : undefined,
        fileName: `result.${extensionOf(r.contentType)}`,
      });
      setProgress((p) => (p ? { ...p, phase: 'done' } : p));
    } catch (e) {
      setError((e as Error).message);
      setProgress(null);
    }
  };

  return (
    <div className="convert">
      <section className="convert-form">
        <h3>Pipeline</h3>
        <select aria-label="pipeline" value={sampleId} onChange={(e) => {
          setSampleId(e.target.value);
          const s = pipelines.find((p) => p.id === e.target.value);
          if (s) setYaml(s.yaml);
        }}>
          {pipelines.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
          <option value="">(pasted YAML)</option>
        </select>
        <textarea aria-label="pipeline YAML" rows={12} spellCheck={false} value={yaml} onChange={(e) => { setYaml(e.target.value); setSampleId(''); }} />
        <h3>Input</h3>
        {needsMedia ? (
          <>
            <div className="row">
              <label className="inline"><input type="radio" checked={inputKind === 'file'} onChange={() => setInputKind('file')} /> file</label>
              <label className="inline"><input type="radio" checked={inputKind === 'asset'} onChange={() => setInputKind('asset')} /> audio library</label>
              <label className="inline"><input type="radio" checked={inputKind === 'text'} onChange={() => setInputKind('text')} /> text</label>
            </div>
            {inputKind === 'file' && <input type="file" aria-label="input file" data-testid="convert-file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />}
            {inputKind === 'asset' && (
              <div className="row">
                <select aria-label="audio asset" value={assetId} onChange={(e) => setAssetId(e.target.value)}>
                  <option value="">choose…</option>
                  {assets.data?.map((a) => <option key={a.url} value={a.id}>{a.name}.{a.format} {a.is_system ? '' : '(yours)'} · {(a.size_bytes / 1024).toFixed(0)} KiB</option>)}
                </select>
                {canUpload && (
                  <label className="button">Upload…<input type="file" hidden accept=".ogg,.opus,.flac,.mp3,.wav" onChange={async (e) => {
                    const f = e.target.files?.[0];
                    if (!f) return;
                    const form = new FormData();
                    form.append('file', f, f.name);
                    try {
                      await uploadWithProgress('/api/v1/assets/audio', form, () => {});
                      await qc.invalidateQueries({ queryKey: ['assets'] });
                      setAssetId(f.name.replace(/[^A-Za-z0-9._-]/g, '_'));
                    } catch (err) {
                      setError((err as Error).message);
                    }
                  }} /></label>
                )}
              </div>
            )}
            {inputKind === 'text' && <textarea aria-label="input text" rows={4} value={text} onChange={(e) => setText(e.target.value)} />}
          </>
        ) : (
          <p className="muted">This pipeline reads its own input (no streamkit::http_input).</p>
        )}
        {canRun ? (
          <button type="button" className="primary" onClick={run} disabled={!!progress && progress.phase !== 'done'}>Run conversion</button>
        ) : (
          <p className="muted">Your role may not run pipelines.</p>
        )}
      </section>
      <section className="convert-result">
        <h3>Result</h3>
        {progress && (
          <div className="progress" data-testid="convert-progress">
            <progress max={progress.total || 1} value={progress.sent} />
            <span>
              {progress.phase}
              {progress.total > 0 && ` · uploaded ${size(progress.sent)} of ${size(progress.total)}`}
              {progress.received > 0 && ` · received ${size(progress.received)}`}
            </span>
          </div>
        )}
        {error && <pre className="field-error" role="alert">{error}</pre>}
        {result && (
          <div data-testid="convert-result">
            <p>
              {result.contentType} · {size(result.size)}
            </p>
            {result.contentType.startsWith('audio/') && <audio controls src={result.url} data-testid="result-audio" />}
            {result.text !== undefined && <pre className="result-text">{result.text.slice(0, 100_000)}</pre>}
            <p>
              <a className="button primary" href={result.url} download={result.fileName} data-testid="download">Download {result.fileName}</a>
            </p>
          </div>
        )}
      </section>
    </div>
  );
}
