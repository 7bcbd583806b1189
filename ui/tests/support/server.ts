// Starts the real `skit serve` (the build in ../build/release, or $SKIT_BINARY) on a free
// loopback port, in the repository root so that samples resolve, with a config written to a
// temp dir. Used by the vitest suites that compare the UI's model with the server's.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const skitBinary = process.env.SKIT_BINARY ?? path.join(repoRoot, 'build/release/cli/skit');

export interface RunningServer {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  log: () => string;
  stop: () => Promise<number | null>;
}

export async function startServer(configYaml = '', opts: { port?: number; dir?: string } = {}): Promise<RunningServer> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'skit-ui-test-'));
  const config = path.join(dir, 'skit.yaml');
  writeFileSync(config, configYaml);
  const logFile = path.join(dir, `server-${Date.now()}.log`);
  let log = '';
  const child = spawn(
    skitBinary,
    ['serve', '--listen', `127.0.0.1:${opts.port ?? 0}`, '--grpc-listen', '', '--config', config],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`skit serve did not start:\n${log}`)), 15000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /skit serve: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`skit serve exited with ${code}:\n${log}`));
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    process: child,
    log: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve(child.exitCode);
          return;
        }
        const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          writeFileSync(logFile, log);
          resolve(code);
        });
        child.kill('SIGTERM');
      }),
  };
}

export function removeDir(dir: string) {
  rmSync(dir, { recursive: true, force: true });
}

export function readText(file: string): string {
  return readFileSync(file, 'utf8');
}
