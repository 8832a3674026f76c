// A real telekernd for the end-to-end tests: free ports, a temp dir, users
// of each role, the built console; stopped (SIGTERM) by stop().
import { ChildProcess, spawn } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const USERS = {
  alice: { password: 'wonderland-admin', role: 'admin' },
  olga: { password: 'operator-pass-1', role: 'operator' },
  victor: { password: 'viewer-pass-22', role: 'viewer' },
} as const;

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through ctest: telekern_console_e2e_tests)`);
  return value;
}

export interface DaemonOptions {
  auth: boolean;
  modules: string[]; // names in TELEKERN_MODULES_DIR
  jwtTtl?: string; // auth.jwt_ttl, e.g. "3s"
  extraYaml?: string;
}

export class Daemon {
  readonly dir = mkdtempSync(join(tmpdir(), 'telekern-console-'));
  http = '';
  grpc = '';
  private child: ChildProcess | null = null;
  private log = '';

  constructor(private readonly options: DaemonOptions) {}

  get base(): string {
    return `http://${this.http}`;
  }

  async start(): Promise<void> {
    const telekernd = env('TELEKERND');
    const modulesDir = env('TELEKERN_MODULES_DIR');
    for (const m of this.options.modules) {
      const file = join(modulesDir, `telekern_${m}.so`);
      if (!existsSync(file)) throw new Error(`${file} is missing: build the ${m} module first`);
    }
    const lines = [
      'listen: 127.0.0.1:0',
      'http: 127.0.0.1:0',
      `data_dir: ${join(this.dir, 'data')}`,
      `modules_dir: ${modulesDir}`,
      `load: [${this.options.modules.join(', ')}]`,
      'drain_timeout: 1s',
      'http_console:',
      `  dir: ${env('TELEKERN_WEB_DIR')}`,
    ];
    if (this.options.auth) {
      // The kernel's pbkdf2-sha256 format with its minimum of 1000 iterations
      // (telekernd --hash-password uses 210000): logins stay fast in tests.
      const hash = (password: string) => {
        const salt = randomBytes(16);
        const key = pbkdf2Sync(password, salt, 1000, 32, 'sha256');
        return `pbkdf2-sha256$1000$${salt.toString('base64url')}$${key.toString('base64url')}`;
      };
      lines.push('auth:', '  jwt_secret: "console-e2e-secret-that-is-long-enough-0123456789"');
      if (this.options.jwtTtl) lines.push(`  jwt_ttl: ${this.options.jwtTtl}`);
      lines.push('  users:');
      for (const [name, u] of Object.entries(USERS)) {
        lines.push(`    - {name: ${name}, password_hash: "${hash(u.password)}", role: ${u.role}}`);
      }
    }
    if (this.options.extraYaml) lines.push(this.options.extraYaml);
    const config = join(this.dir, 'telekernd.yaml');
    writeFileSync(config, lines.join('\n') + '\n');
    const ready = join(this.dir, 'ready.json');
    this.child = spawn(telekernd, ['--config', config, '--ready-file', ready], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      this.child!.once('exit', (code) => reject(new Error(`telekernd exited (${code}):\n${this.log}`))),
    );
    const deadline = Date.now() + 30_000;
    const waitReady = (async () => {
      while (!existsSync(ready)) {
        if (Date.now() > deadline) throw new Error(`telekernd not ready in 30 s:\n${this.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await Promise.race([waitReady, exited]);
    exited.catch(() => {});
    const addresses = JSON.parse(readFileSync(ready, 'utf8'));
    this.http = addresses.http;
    this.grpc = addresses.grpc;
  }

  output(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  // A gateway call from the test itself (not the browser).
  async rpc(service: string, method: string, body: object, token?: string): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(`${this.base}/rpc/${service}/${method}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await r.text();
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      // NDJSON or text
    }
    return { status: r.status, json };
  }

  async token(user: keyof typeof USERS): Promise<string> {
    const r = await this.rpc('telekern.kernel.v1.Kernel', 'Login', { user, password: USERS[user].password });
    if (r.status !== 200) throw new Error(`login ${user}: ${JSON.stringify(r.json)}`);
    return r.json.token;
  }
}
