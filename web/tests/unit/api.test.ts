import { describe, expect, it, vi } from 'vitest';
import { Api, ApiError, parseError, roleAtLeast } from '../../src/api';

function reply(status: number, body: string, headers: Record<string, string> = {}) {
  return new Response(body, { status, headers });
}

describe('Api', () => {
  it('posts protobuf JSON to /rpc and sends the token as a bearer', async () => {
    const fetcher = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) => reply(200, '{"version":"1.0"}'));
    const api = new Api('http://k', fetcher as typeof fetch);
    api.session = { token: 'T', user: 'u', role: 'ROLE_ADMIN' };
    expect(await api.call('telekern.kernel.v1.Kernel', 'GetInfo')).toEqual({ version: '1.0' });
    const [url, init] = fetcher.mock.calls[0];
    expect(url).toBe('http://k/rpc/telekern.kernel.v1.Kernel/GetInfo');
    expect(init!.method).toBe('POST');
    expect((init!.headers as Record<string, string>).Authorization).toBe('Bearer T');
  });

  it('keeps the login token in memory only and reports expiry', async () => {
    const fetcher = vi.fn(async () =>
      reply(200, JSON.stringify({ token: 'jwt', role: 'ROLE_OPERATOR', expiresAt: '2030-01-01T00:00:00Z' })),
    );
    const api = new Api('', fetcher as unknown as typeof fetch);
    const s = await api.login('alice', 'pw');
    expect(s).toEqual({ token: 'jwt', user: 'alice', role: 'ROLE_OPERATOR', expiresAt: Date.parse('2030-01-01T00:00:00Z') });
    api.logout();
    expect(api.session).toBeNull();
  });

  it('turns gateway errors into ApiError and signals a refused session', async () => {
    const fetcher = vi.fn(async () =>
      reply(401, JSON.stringify({ code: 16, status: 'UNAUTHENTICATED', message: 'token expired' })),
    );
    const api = new Api('', fetcher as unknown as typeof fetch);
    api.session = { token: 'old', user: 'u', role: 'ROLE_VIEWER' };
    const seen: ApiError[] = [];
    api.onUnauthenticated = (e) => seen.push(e);
    await expect(api.call('S', 'M')).rejects.toMatchObject({ httpStatus: 401, status: 'UNAUTHENTICATED', message: 'token expired' });
    expect(seen).toHaveLength(1);
  });

  it('says so when the daemon does not answer', async () => {
    const api = new Api('', (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch);
    await expect(api.call('S', 'M')).rejects.toMatchObject({ status: 'UNAVAILABLE', message: expect.stringContaining('does not answer') });
  });

  it('reads a server stream as SSE until the end event', async () => {
    const body = 'data: {"n":1}\n\ndata: {"n":2}\n\nevent: end\ndata: {}\n\n';
    const api = new Api('', (async () => reply(200, body, { 'Content-Type': 'text/event-stream' })) as unknown as typeof fetch);
    const got: unknown[] = [];
    await api.stream('S', 'M', {}, (m) => got.push(m));
    expect(got).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('rejects a stream that ends with an error event', async () => {
    const body = 'data: {"n":1}\n\nevent: error\ndata: {"code":14,"status":"UNAVAILABLE","message":"gone"}\n\n';
    const api = new Api('', (async () => reply(200, body)) as unknown as typeof fetch);
    await expect(api.stream('S', 'M', {}, () => {})).rejects.toMatchObject({ message: 'gone' });
  });

  it('collects NDJSON and fails on an error line', async () => {
    const api = new Api('', (async () => reply(200, '{"a":1}\n{"a":2}\n')) as unknown as typeof fetch);
    expect(await api.collect('S', 'M', {})).toEqual([{ a: 1 }, { a: 2 }]);
    const bad = new Api('', (async () => reply(200, '{"a":1}\n{"error":{"message":"boom"}}\n')) as unknown as typeof fetch);
    await expect(bad.collect('S', 'M', {})).rejects.toMatchObject({ message: 'boom' });
  });
});

describe('parseError and roles', () => {
  it('reads nested and flat error bodies and plain text', () => {
    expect(parseError(404, '{"error":{"status":"NOT_FOUND","message":"no"}}').message).toBe('no');
    expect(parseError(503, 'down\n').message).toBe('down');
    expect(parseError(500, '').message).toBe('HTTP 500');
  });
  it('orders roles viewer < operator < admin', () => {
    expect(roleAtLeast('ROLE_ADMIN', 'ROLE_OPERATOR')).toBe(true);
    expect(roleAtLeast('ROLE_VIEWER', 'ROLE_OPERATOR')).toBe(false);
    expect(roleAtLeast(undefined, 'ROLE_VIEWER')).toBe(false);
  });
});
