// The console's only way to the daemon: the kernel's HTTP/JSON gateway
// (POST /rpc/<Service>/<Method>, Server-Sent Events for server streams),
// with the Login token kept in memory only.
import { SseParser } from './sse';

export type Role = 'ROLE_VIEWER' | 'ROLE_OPERATOR' | 'ROLE_ADMIN';
const roleRank: Record<string, number> = { ROLE_VIEWER: 1, ROLE_OPERATOR: 2, ROLE_ADMIN: 3 };

export function roleAtLeast(role: string | undefined, needed: Role): boolean {
  return (roleRank[role ?? ''] ?? 0) >= roleRank[needed];
}

export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly status: string, // gRPC status name, e.g. UNAUTHENTICATED
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  get unauthenticated(): boolean {
    return this.httpStatus === 401 || this.status === 'UNAUTHENTICATED';
  }
}

// The gateway's error body: {code, status, message}, possibly under "error".
export function parseError(httpStatus: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body);
    const e = parsed?.error ?? parsed;
    if (e && typeof e.message === 'string') {
      return new ApiError(httpStatus, String(e.status ?? ''), e.message);
    }
  } catch {
    // not JSON: fall through
  }
  const text = body.trim() || `HTTP ${httpStatus}`;
  return new ApiError(httpStatus, httpStatus === 0 ? 'UNAVAILABLE' : '', text);
}

export interface Session {
  token: string; // empty when the daemon runs without auth
  user: string;
  role: Role;
  expiresAt?: number; // ms since epoch
}

type Fetch = typeof fetch;

export class Api {
  session: Session | null = null;
  // Called when a call finds the session expired or refused (401).
  onUnauthenticated: (error: ApiError) => void = () => {};

  constructor(
    private readonly base = '',
    private readonly fetcher: Fetch = (...args) => fetch(...args),
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { 'Content-Type': 'application/json', ...extra };
    if (this.session?.token) h.Authorization = `Bearer ${this.session.token}`;
    return h;
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetcher(this.base + path, init);
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') throw e;
      throw new ApiError(0, 'UNAVAILABLE', 'telekernd does not answer (is the daemon running?)');
    }
    if (!response.ok) {
      const error = parseError(response.status, await response.text());
      if (error.unauthenticated && this.session?.token) this.onUnauthenticated(error);
      throw error;
    }
    return response;
  }

  // A unary call: POST /rpc/<service>/<method> with a protobuf-JSON body.
  async call<T = any>(service: string, method: string, body: object = {}, signal?: AbortSignal): Promise<T> {
    const response = await this.send(`/rpc/${service}/${method}`, {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(body),
      signal,
    });
    return (await response.json()) as T;
  }

  // A server stream as Server-Sent Events; resolves when it ends, rejects on
  // an error event. Abort `signal` to cancel the call.
  async stream<T = any>(
    service: string,
    method: string,
    body: object,
    onMessage: (message: T) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const response = await this.send(`/rpc/${service}/${method}`, {
      method: 'POST',
      headers: this.headers({ Accept: 'text/event-stream' }),
      body: JSON.stringify(body),
      signal,
    });
    if (!response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        for (const event of parser.push(value)) {
          if (event.event === 'end') return;
          if (event.event === 'error') throw parseError(500, event.data);
          onMessage(JSON.parse(event.data) as T);
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  // A server stream read whole (NDJSON), e.g. CSV chunks.
  async collect<T = any>(service: string, method: string, body: object, signal?: AbortSignal): Promise<T[]> {
    const response = await this.send(`/rpc/${service}/${method}`, {
      method: 'POST',
      headers: this.headers({ Accept: 'application/x-ndjson' }),
      body: JSON.stringify(body),
      signal,
    });
    const out: T[] = [];
    for (const line of (await response.text()).split('\n')) {
      if (!line.trim()) continue;
      const parsed = JSON.parse(line);
      if (parsed.error) throw parseError(500, line);
      out.push(parsed as T);
    }
    return out;
  }

  // A one-minute, single-use URL for a report page (a GET route answering
  // HTML, e.g. /bench/runs/ID/report): the kernel keeps the caller's
  // credentials for that one GET, so a new tab can open the report without
  // the token ever appearing in a URL (POST /api/report-tickets).
  async reportUrl(path: string, signal?: AbortSignal): Promise<string> {
    const response = await this.send('/api/report-tickets', {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify({ path }),
      signal,
    });
    const body = (await response.json()) as { url?: string };
    if (!body.url) throw new ApiError(response.status, 'INTERNAL', 'the daemon issued no report URL');
    return this.base + body.url;
  }

  // Whether the daemon answers without credentials (auth off): its /health
  // then lists modules, which it shows only to viewers.
  async authOff(): Promise<boolean> {
    const response = await this.send('/health', { headers: { Accept: 'application/json' } });
    const body = await response.json();
    return Array.isArray(body?.modules);
  }

  async login(user: string, password: string): Promise<Session> {
    this.session = null;
    const r = await this.call<{ token: string; expiresAt?: string; role: Role }>(
      'telekern.kernel.v1.Kernel',
      'Login',
      { user, password },
    );
    this.session = {
      token: r.token,
      user,
      role: r.role,
      expiresAt: r.expiresAt ? Date.parse(r.expiresAt) : undefined,
    };
    return this.session;
  }

  logout(): void {
    this.session = null;
  }
}

export const KERNEL = 'telekern.kernel.v1.Kernel';
export const BROKER = 'telekern.broker.v1.Broker';
export const MONITOR = 'telekern.monitor.v1.Monitor';
export const COLLECTOR = 'telekern.collector.v1.Collector';
export const TRACER = 'telekern.tracer.v1.Tracer';
export const BENCH = 'telekern.bench.v1.Bench';
