// The server wants a token: trade it for the login cookie (the token stays out of scripts).
import { useState } from 'react';
import { api } from '../api/client';
import type { AuthMe } from '../api/types';

export function LoginView({ onLogin }: { onLogin: (me: AuthMe) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <div className="login">
      <form className="login-card" data-testid="login-form" onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          onLogin(await api.login(token.trim()));
        } catch (err) {
          setError((err as Error).message);
        } finally {
          setBusy(false);
        }
      }}>
        <h2>StreamKit</h2>
        <p className="muted">This server requires an access token (auth.tokens in its configuration).</p>
        <label>Token <input type="password" autoFocus autoComplete="current-password" value={token} onChange={(e) => setToken(e.target.value)} /></label>
        {error && <p className="field-error" role="alert">{error}</p>}
        <button type="submit" className="primary" disabled={busy || token.trim() === ''}>Sign in</button>
      </form>
    </div>
  );
}
