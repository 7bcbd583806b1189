// The server's API shapes, written once: REST (docs/sessions.md, docs/configuration.md,
// StreamKit's section E) and the WebSocket control plane (section F). tests/api_types.test.ts
// checks them against what a real `skit serve` returns.

/** A packet type as the schema writes it: "Binary", or {"RawAudio": {...}}. */
export type PacketType = string | Record<string, Record<string, unknown>>;

export interface InputPin {
  name: string;
  accepts_types: PacketType[];
  cardinality: 'One' | 'Broadcast' | { Dynamic: { prefix: string } };
}

export interface OutputPin {
  name: string;
  produces_type: PacketType;
  cardinality: 'One' | 'Broadcast' | { Dynamic: { prefix: string } };
}

/** A JSON Schema subset, as `describe()` of a node's params produces it. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  minLength?: number;
  maxLength?: number;
  /** skit: the param can be changed while the node runs (tunenode). */
  tunable?: boolean;
  /** A secret (a stream key): entered, never shown back (the server's views say "***"). */
  writeOnly?: boolean;
  [key: string]: unknown;
}

export interface NodeDefinition {
  kind: string;
  description: string;
  param_schema: JsonSchema;
  inputs: InputPin[];
  outputs: OutputPin[];
  categories: string[];
  bidirectional: boolean;
  /** Ours: "whip" or "whep" for the WebRTC transports (their HTTP signalling family). */
  http_endpoint?: 'whip' | 'whep';
}

export interface PacketTypeMeta {
  id: string;
  label: string;
  color: string;
  display_template?: string;
  compatibility: { kind: 'any' | 'exact' | 'structfieldwildcard'; fields?: { name: string; wildcard_value?: unknown }[] };
}

export type Role = 'admin' | 'operator' | 'viewer';

export interface Permissions {
  create_sessions: boolean;
  destroy_sessions: boolean;
  list_sessions: boolean;
  modify_sessions: boolean;
  tune_nodes: boolean;
  load_plugins: boolean;
  delete_plugins: boolean;
  list_nodes: boolean;
  list_samples: boolean;
  read_samples: boolean;
  write_samples: boolean;
  delete_samples: boolean;
  access_all_sessions: boolean;
  upload_assets: boolean;
  delete_assets: boolean;
  process_oneshot: boolean;
}

export interface PermissionsInfo {
  role: Role;
  permissions: Permissions;
}

export interface AuthMe {
  auth_enabled: boolean;
  name: string | null;
  role: Role;
  via?: 'cookie' | 'bearer';
  permissions: Permissions;
}

export interface ServerConfigInfo {
  version: string;
  limits: { max_body_bytes: number; max_concurrent_oneshots: number; max_sessions: number; max_nodes_per_session: number };
  placement: string;
}

export interface SamplePipeline {
  id: string;
  name: string;
  description: string;
  yaml: string;
  is_system: boolean;
  mode: 'oneshot' | 'dynamic';
  is_fragment: boolean;
}

export interface SavePipelineRequest {
  name: string;
  description?: string;
  yaml: string;
  overwrite?: boolean;
  is_fragment?: boolean;
}

export interface AudioAsset {
  id: string;
  name: string;
  path: string;
  format: string;
  size_bytes: number;
  is_system: boolean;
  url: string;
  license?: string;
}

export interface Diagnostic {
  message: string;
  code: string;
  line?: number;
  column?: number;
  node?: string;
  param?: string;
}

/** The compiled model (StreamKit's Pipeline) as /api/v1/validate returns it. */
export interface CompiledPipeline {
  name: string;
  description: string;
  mode: 'oneshot' | 'dynamic';
  nodes: Record<string, { kind: string; params: Record<string, unknown>; isolation?: 'dedicated' }>;
  node_order: string[];
  connections: Connection[];
}

export interface ValidateResponse {
  valid: boolean;
  mode: 'oneshot' | 'dynamic';
  errors: Diagnostic[];
  pipeline: CompiledPipeline | null;
}

export interface Connection {
  from_node: string;
  from_pin: string;
  to_node: string;
  to_pin: string;
  mode?: 'reliable' | 'best_effort';
}

/** StreamKit's NodeState: unit states as strings, data states as one-key objects. */
export type NodeState =
  | 'Initializing'
  | 'Ready'
  | 'Running'
  | { Recovering: { reason: string; details?: unknown } }
  | { Degraded: { reason: string; details?: unknown } }
  | { Failed: { reason: string } }
  | { Stopped: { reason: string } };

export interface NodeStats {
  received: number;
  sent: number;
  discarded: number;
  errored: number;
  duration_secs: number;
  bytes_in: number;
  bytes_out: number;
  /** Telemetry events over the node's per-second cap, dropped rather than queued. */
  telemetry_dropped: number;
}

export interface LiveNode {
  kind: string;
  params: Record<string, unknown>;
  state: NodeState;
  stats: NodeStats;
  worker_pid: number;
  restarts: number;
}

export interface LivePipeline {
  name: string;
  description: string;
  mode: 'dynamic';
  nodes: Record<string, LiveNode>;
  connections: Connection[];
}

export interface SessionInfo {
  id: string;
  name: string;
  created_at: string;
}

export interface SessionCreated {
  session_id: string;
  name: string;
  created_at: string;
}

// ---- WebSocket control plane -------------------------------------------------------------

export type BatchOperation =
  | { action: 'addnode'; node_id: string; kind: string; params?: Record<string, unknown> }
  | { action: 'removenode'; node_id: string }
  | { action: 'connect'; from_node: string; from_pin: string; to_node: string; to_pin: string; mode?: 'reliable' | 'best_effort' }
  | { action: 'disconnect'; from_node: string; from_pin: string; to_node: string; to_pin: string };

export type ControlRequest =
  | { action: 'createsession'; name?: string; yaml?: string }
  | { action: 'destroysession'; session_id: string }
  | { action: 'listsessions' }
  | { action: 'listnodes' }
  | { action: 'getpipeline'; session_id: string }
  | { action: 'addnode'; session_id: string; node_id: string; kind: string; params?: Record<string, unknown> }
  | { action: 'removenode'; session_id: string; node_id: string }
  | { action: 'connect'; session_id: string; from_node: string; from_pin: string; to_node: string; to_pin: string; mode?: 'reliable' | 'best_effort' }
  | { action: 'disconnect'; session_id: string; from_node: string; from_pin: string; to_node: string; to_pin: string }
  | { action: 'tunenode'; session_id: string; node_id: string; message: { UpdateParams: Record<string, unknown> } }
  | { action: 'tunenodeasync'; session_id: string; node_id: string; message: { UpdateParams: Record<string, unknown> } }
  | { action: 'validatebatch'; session_id: string; operations: BatchOperation[] }
  | { action: 'applybatch'; session_id: string; operations: BatchOperation[] }
  | { action: 'getpermissions' };

export interface BatchIssue {
  error_type: 'error' | 'warning';
  message: string;
  node_id?: string;
  operation?: number;
}

export type ControlResponse =
  | { action: 'sessioncreated'; session_id: string; name: string; created_at: string }
  | { action: 'sessiondestroyed'; session_id: string }
  | { action: 'sessionslisted'; sessions: SessionInfo[] }
  | { action: 'nodeslisted'; nodes: NodeDefinition[] }
  | { action: 'pipeline'; pipeline: LivePipeline }
  | { action: 'success' }
  | { action: 'validationresult'; errors: BatchIssue[] }
  | { action: 'batchapplied'; success: boolean; errors: string[] }
  | { action: 'permissions'; role: Role; permissions: Permissions }
  | { action: 'error'; message: string };

export type ControlEvent =
  | { event: 'sessioncreated'; session_id: string; name: string; created_at: string }
  | { event: 'sessiondestroyed'; session_id: string }
  | { event: 'nodeadded'; session_id: string; node_id: string; kind: string; params: Record<string, unknown> }
  | { event: 'noderemoved'; session_id: string; node_id: string }
  | { event: 'connectionadded'; session_id: string; from_node: string; from_pin: string; to_node: string; to_pin: string }
  | { event: 'connectionremoved'; session_id: string; from_node: string; from_pin: string; to_node: string; to_pin: string }
  | { event: 'nodestatechanged'; session_id: string; node_id: string; state: NodeState; worker_pid?: number; restarts?: number; timestamp: string }
  | { event: 'nodestatsupdated'; session_id: string; node_id: string; stats: NodeStats; timestamp: string }
  | { event: 'nodeparamschanged'; session_id: string; node_id: string; params: Record<string, unknown> };

export interface Envelope<T> {
  type: 'request' | 'response' | 'event';
  correlation_id?: string;
  payload: T;
}

/** "Running", "Recovering", ... : the state's name whatever its shape. */
export function stateName(state: NodeState | undefined): string {
  if (state === undefined) return 'Unknown';
  if (typeof state === 'string') return state;
  return Object.keys(state)[0] ?? 'Unknown';
}

export function stateReason(state: NodeState | undefined): string | undefined {
  if (state === undefined || typeof state === 'string') return undefined;
  const inner = Object.values(state)[0] as { reason?: string } | undefined;
  return inner?.reason;
}
