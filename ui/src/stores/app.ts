// App-wide state: who is logged in, whether the server answers, the WebSocket status.
import { create } from 'zustand';
import type { AuthMe, Permissions } from '../api/types';
import type { ConnectionStatus } from '../api/ws';

interface AppState {
  me: AuthMe | null;
  reachable: boolean;
  wsStatus: ConnectionStatus;
  setMe: (me: AuthMe | null) => void;
  setReachable: (ok: boolean) => void;
  setWsStatus: (s: ConnectionStatus) => void;
}

export const useApp = create<AppState>((set) => ({
  me: null,
  reachable: true,
  wsStatus: 'closed',
  setMe: (me) => set({ me }),
  setReachable: (reachable) => set({ reachable }),
  setWsStatus: (wsStatus) => set({ wsStatus }),
}));

/** The permission `p` of the logged-in role (false before login). */
export function useCan(p: keyof Permissions): boolean {
  return useApp((s) => s.me?.permissions[p] ?? false);
}
