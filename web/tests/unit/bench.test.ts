import { describe, expect, it, vi } from 'vitest';
import { Api } from '../../src/api';
import { BenchRun, SAMPLE_WORKLOAD, benchReportPath } from '../../src/bench';

// RunBenchmark's stream as the gateway sends it (protobuf JSON).
const started = { runId: 'exp-1', plannedSeconds: 5, elapsedSeconds: 0, done: 0, total: 5, started: true };
const windowAt = (index: number, seconds: number, rate: number) => ({
  runId: 'exp-1',
  plannedSeconds: 5,
  elapsedSeconds: seconds,
  done: Math.floor(seconds),
  total: 5,
  window: {
    index,
    warmup: index === 0,
    elapsedSeconds: seconds,
    publishRate: rate,
    consumeRate: rate - 1,
    publishLatency: { p50: 0.5, p99: 2.5 },
    endToEndLatency: { p99: 3 },
  },
});

describe('BenchRun', () => {
  it('folds the stream into progress and per-window series', () => {
    const run = new BenchRun(1000);
    run.add(started);
    expect(run.progress).toMatchObject({ runId: 'exp-1', done: 0, total: 5, windows: 0 });
    run.add(windowAt(0, 1.0, 200));
    run.add(windowAt(1, 2.0, 201));
    expect(run.progress.done).toBe(2);
    expect(run.progress.windows).toBe(2);
    expect(run.rates.data()).toEqual([
      [1001, 1002],
      [200, 201],
      [199, 200],
    ]);
    expect(run.latencies.data()).toEqual([
      [1001, 1002],
      [0.5, 0.5],
      [2.5, 2.5],
      [3, 3],
    ]);
    run.add({
      runId: 'exp-1',
      plannedSeconds: 5,
      elapsedSeconds: 2.2,
      done: 2,
      total: 5,
      finished: { runId: 'exp-1', state: 'cancelled', valid: false },
      reportPath: '/r/index.html',
      invalidReasons: ['cancelled'],
      healthFailures: [],
    });
    expect(run.progress.finished.state).toBe('cancelled');
    expect(run.progress.done).toBe(5); // the bar ends full
    expect(run.progress.invalidReasons).toEqual(['cancelled']);
    expect(run.progress.reportPath).toBe('/r/index.html');
  });

  it('reads progress from planned/elapsed seconds when done/total are absent (zero values are omitted in JSON)', () => {
    const run = new BenchRun(0);
    run.add({ runId: 'exp-2', plannedSeconds: 61.5, elapsedSeconds: 10.7, started: true });
    expect(run.progress).toMatchObject({ done: 10, total: 62 });
  });

  it('offers a short paced sample workload and the report route', () => {
    expect(SAMPLE_WORKLOAD).toContain('producerRate: 200');
    expect(benchReportPath('exp 1/x')).toBe('/bench/runs/exp%201%2Fx/report');
  });
});

describe('Api.reportUrl', () => {
  it('asks the kernel for a report ticket with the session credentials', async () => {
    const fetcher = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) =>
      new Response(JSON.stringify({ url: '/bench/runs/exp-1/report?ticket=abc', expiresInSeconds: 60 }), { status: 200 }),
    );
    const api = new Api('http://k', fetcher as typeof fetch);
    api.session = { token: 'T', user: 'u', role: 'ROLE_VIEWER' };
    expect(await api.reportUrl('/bench/runs/exp-1/report')).toBe('http://k/bench/runs/exp-1/report?ticket=abc');
    const [url, init] = fetcher.mock.calls[0];
    expect(url).toBe('http://k/api/report-tickets');
    expect(JSON.parse(String(init!.body))).toEqual({ path: '/bench/runs/exp-1/report' });
    expect((init!.headers as Record<string, string>).Authorization).toBe('Bearer T');
  });
});
