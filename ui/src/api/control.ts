// The page's one WebSocket control client, started once the user is logged in.
import { ControlClient, controlUrl } from './ws';

let client: ControlClient | null = null;

export function control(): ControlClient {
  if (!client) client = new ControlClient(controlUrl());
  return client;
}
