// REST calls. Errors carry the server's plain-text message (one problem per line) and status;
// a server that cannot be reached is reported as such, once, to the store.
import type {
  AudioAsset,
  AuthMe,
  LivePipeline,
  NodeDefinition,
  PacketTypeMeta,
  PermissionsInfo,
  SamplePipeline,
  SavePipelineRequest,
  ServerConfigInfo,
  SessionCreated,
  SessionInfo,
  ValidateResponse,
} from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class UnreachableError extends Error {}

type ReachabilityListener = (reachable: boolean) => void;
const reachabilityListeners = new Set<ReachabilityListener>();
export function onReachability(l: ReachabilityListener): () => void {
  reachabilityListeners.add(l);
  return () => reachabilityListeners.delete(l);
}
function reachable(ok: boolean) {
  for (const l of reachabilityListeners) l(ok);
}

let baseUrl = '';
/** Tests in Node talk to a server by absolute URL; the browser uses the page's origin. */
export function setBaseUrl(url: string) {
  baseUrl = url.replace(/\/$/, '');
}
export function apiUrl(path: string): string {
  return `${baseUrl}${path.startsWith('/') ? path.slice(1 - (baseUrl ? 1 : 0) * 0) : path}`.replace(/^\/\//, '/');
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(baseUrl ? baseUrl + path : path.replace(/^\//, ''), { credentials: 'same-origin', ...init });
  } catch (e) {
    reachable(false);
    throw new UnreachableError(`the server cannot be reached (${(e as Error).message})`);
  }
  reachable(true);
  if (!res.ok) {
    const text = (await res.text()).trim();
    throw new ApiError(res.status, text || `${res.status} ${res.statusText}`);
  }
  return res;
}

async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return res.json() as Promise<T>;
}

export const api = {
  me: () => getJson<AuthMe>('/api/v1/auth/me'),
  login: (token: string) => sendJson<AuthMe>('POST', '/api/v1/auth/login', { token }),
  logout: () => sendJson<{ logged_out: boolean }>('POST', '/api/v1/auth/logout', {}),
  permissions: () => getJson<PermissionsInfo>('/api/v1/permissions'),
  config: () => getJson<ServerConfigInfo>('/api/v1/config'),
  nodes: () => getJson<NodeDefinition[]>('/api/v1/schema/nodes'),
  packets: () => getJson<PacketTypeMeta[]>('/api/v1/schema/packets'),
  oneshotSamples: () => getJson<SamplePipeline[]>('/api/v1/samples/oneshot'),
  dynamicSamples: () => getJson<SamplePipeline[]>('/api/v1/samples/dynamic'),
  saveSample: (req: SavePipelineRequest) => sendJson<SamplePipeline>('POST', '/api/v1/samples/oneshot', req),
  deleteSample: (id: string) => sendJson<{ id: string }>('DELETE', `/api/v1/samples/oneshot/${id}`),
  audioAssets: () => getJson<AudioAsset[]>('/api/v1/assets/audio'),
  deleteAudioAsset: (id: string) => sendJson<{ id: string }>('DELETE', `/api/v1/assets/audio/${encodeURIComponent(id)}`),
  validate: (yaml: string, mode?: 'oneshot' | 'dynamic') => sendJson<ValidateResponse>('POST', '/api/v1/validate', { yaml, mode }),
  sessions: () => getJson<SessionInfo[]>('/api/v1/sessions'),
  createSession: (name: string | undefined, yaml: string) =>
    sendJson<SessionCreated>('POST', '/api/v1/sessions', { name: name || undefined, yaml }),
  pipeline: (id: string) => getJson<LivePipeline>(`/api/v1/sessions/${encodeURIComponent(id)}/pipeline`),
  destroySession: (id: string) => sendJson<{ session_id: string }>('DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`),
};

/** Uploads a file with progress (fetch has no upload progress; XMLHttpRequest does). */
export function uploadWithProgress(
  path: string,
  form: FormData,
  onUpload: (sent: number, total: number) => void,
  onDownload?: (received: number) => void,
): Promise<{ status: number; body: Blob; contentType: string; text?: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', baseUrl ? baseUrl + path : path.replace(/^\//, ''));
    xhr.responseType = 'blob';
    xhr.withCredentials = true;
    xhr.upload.onprogress = (e) => onUpload(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onprogress = (e) => onDownload?.(e.loaded);
    xhr.onerror = () => {
      reachable(false);
      reject(new UnreachableError('the server cannot be reached'));
    };
    xhr.onload = async () => {
      reachable(true);
      const body = xhr.response as Blob;
      const contentType = xhr.getResponseHeader('Content-Type') ?? 'application/octet-stream';
      if (xhr.status >= 400) {
        reject(new ApiError(xhr.status, (await body.text()).trim() || `HTTP ${xhr.status}`));
        return;
      }
      resolve({ status: xhr.status, body, contentType });
    };
    xhr.send(form);
  });
}
