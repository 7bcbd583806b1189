// The shell: login gate, the four views, the connection state.
import { useEffect, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, onReachability } from './api/client';
import { control } from './api/control';
import { useNodeDefs } from './api/queries';
import { useApp } from './stores/app';
import { useDesign } from './stores/design';
import { useMonitor } from './stores/monitor';
import { DesignView } from './views/DesignView';
import { MonitorView } from './views/MonitorView';
import { ConvertView } from './views/ConvertView';
import { StreamView } from './views/StreamView';
import { LoginView } from './views/LoginView';

type View = 'design' | 'monitor' | 'convert' | 'stream';
const viewOf = (path: string): View =>
  path.endsWith('/monitor') ? 'monitor' : path.endsWith('/convert') ? 'convert' : path.endsWith('/stream') ? 'stream' : 'design';

function Shell() {
  const [view, setView] = useState<View>(viewOf(window.location.pathname));
  const me = useApp((s) => s.me);
  const wsStatus = useApp((s) => s.wsStatus);
  const reachable = useApp((s) => s.reachable);
  const qc = useQueryClient();
  const defs = useNodeDefs();

  useEffect(() => {
    const onPop = () => setView(viewOf(window.location.pathname));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    if (defs.data) useDesign.getState().setDefs(defs.data);
  }, [defs.data]);
  // A dropped control connection may mean the server is gone: ask, so that the page says so
  // (and checks again until it is back) instead of showing stale data silently.
  useEffect(() => {
    if (wsStatus === 'closed') void api.me().catch(() => undefined);
  }, [wsStatus]);
  useEffect(() => {
    const c = control();
    const offStatus = c.onStatus((s) => useApp.getState().setWsStatus(s));
    const offEvent = c.onEvent((e) => useMonitor.getState().apply(e));
    c.start();
    return () => {
      offStatus();
      offEvent();
      c.stop();
    };
  }, []);

  const go = (v: View) => {
    const base = document.querySelector('base')?.getAttribute('href') ?? '/';
    window.history.pushState(null, '', `${base.replace(/\/$/, '')}/${v === 'design' ? '' : v}`);
    setView(v);
  };

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">StreamKit</span>
        <nav>
          {(['design', 'monitor', 'convert', 'stream'] as View[]).map((v) => (
            <button key={v} type="button" className={view === v ? 'active' : ''} aria-current={view === v ? 'page' : undefined} onClick={() => go(v)}>
              {v[0].toUpperCase() + v.slice(1)}
            </button>
          ))}
        </nav>
        <span className="grow" />
        <span className={`ws-status ${wsStatus}`} data-testid="ws-status" title="WebSocket control connection">
          {wsStatus === 'open' ? 'live' : wsStatus === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
        {me && (
          <span className="who" data-testid="who">
            {me.auth_enabled ? `${me.name} (${me.role})` : 'no auth (admin)'}
          </span>
        )}
        {me?.auth_enabled && (
          <button type="button" onClick={async () => {
            await api.logout().catch(() => undefined);
            useApp.getState().setMe(null);
            qc.clear();
          }}>Sign out</button>
        )}
      </header>
      {!reachable && (
        <div className="banner" role="alert" data-testid="unreachable">
          The server cannot be reached. Retrying — the page keeps your work.
        </div>
      )}
      <div className="view">
        {view === 'design' && <DesignView />}
        {view === 'monitor' && <MonitorView />}
        {view === 'convert' && <ConvertView />}
        {view === 'stream' && <StreamView onMonitor={() => go('monitor')} />}
      </div>
    </div>
  );
}

export function App() {
  const me = useApp((s) => s.me);
  const reachable = useApp((s) => s.reachable);
  const meQ = useQuery({ queryKey: ['me'], queryFn: api.me, retry: false });
  useEffect(() => onReachability((ok) => useApp.getState().setReachable(ok)), []);
  useEffect(() => {
    if (meQ.data) useApp.getState().setMe(meQ.data);
  }, [meQ.data]);
  // While the server is away, check now and then whether it is back (only then).
  useEffect(() => {
    if (reachable) return;
    const t = setInterval(() => void meQ.refetch(), 3000);
    return () => clearInterval(t);
  }, [reachable, meQ]);

  if (me) return <Shell />;
  if (meQ.error instanceof ApiError && meQ.error.status === 401) {
    return <LoginView onLogin={(m) => useApp.getState().setMe(m)} />;
  }
  if (meQ.error) {
    return (
      <div className="login">
        <div className="login-card" role="alert" data-testid="unreachable">
          <h2>StreamKit</h2>
          <p>The server cannot be reached ({(meQ.error as Error).message}). Retrying every few seconds…</p>
        </div>
      </div>
    );
  }
  return <div className="login"><p className="muted">Connecting…</p></div>;
}
