// The bench page's model: RunBenchmark's stream (started, one window per
// statistics window, finished) folded into progress and the per-window
// series the live charts draw; the sample workload the form starts from.
import { LiveSeries } from './series';

export interface BenchProgress {
  runId: string;
  done: number; // whole seconds done (warm-up + test)
  total: number; // whole seconds planned
  windows: number;
  finished?: any; // RunSummary
  reportPath?: string;
  invalidReasons: string[];
  healthFailures: string[];
}

export const RATE_SERIES = ['publish msg/s', 'consume msg/s'];
export const LATENCY_SERIES = ['publish p50', 'publish p99', 'end-to-end p99'];

export class BenchRun {
  progress: BenchProgress = { runId: '', done: 0, total: 0, windows: 0, invalidReasons: [], healthFailures: [] };
  readonly rates = new LiveSeries(RATE_SERIES, Infinity, 100000);
  readonly latencies = new LiveSeries(LATENCY_SERIES, Infinity, 100000);

  // `startedAt` (seconds since the epoch) anchors the windows' elapsed
  // seconds on the charts' time axis.
  constructor(private readonly startedAt: number) {}

  // Folds one RunBenchmarkResponse (protobuf JSON) in.
  add(m: any): void {
    const p = this.progress;
    if (m.runId) p.runId = m.runId;
    const planned = Number(m.total ?? Math.round(Number(m.plannedSeconds ?? 0)));
    const done = Number(m.done ?? Math.floor(Number(m.elapsedSeconds ?? 0)));
    if (planned > 0) p.total = planned;
    if (done > p.done) p.done = done;
    if (m.window) {
      const w = m.window;
      const t = this.startedAt + Number(w.elapsedSeconds ?? 0);
      p.windows++;
      this.rates.add(t, [Number(w.publishRate ?? 0), Number(w.consumeRate ?? 0)]);
      this.latencies.add(t, [
        Number(w.publishLatency?.p50 ?? 0),
        Number(w.publishLatency?.p99 ?? 0),
        Number(w.endToEndLatency?.p99 ?? 0),
      ]);
    }
    if (m.finished) {
      p.finished = m.finished;
      if (p.total > 0) p.done = Math.max(p.done, p.total);
      p.reportPath = m.reportPath || undefined;
      p.invalidReasons = m.invalidReasons ?? [];
      p.healthFailures = m.healthFailures ?? [];
    }
  }
}

// A short paced run on this daemon's broker: OMB's workload fields, with
// duration strings for minutes.
export const SAMPLE_WORKLOAD = `name: console-sample
topics: 1
partitionsPerTopic: 2
messageSize: 256
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 200
testDurationMinutes: 20s
warmupDurationMinutes: 5s
keyDistributor: KEY_ROUND_ROBIN
`;

// The report route of a run (GetReport: the page itself, text/html).
export function benchReportPath(runId: string): string {
  return `/bench/runs/${encodeURIComponent(runId)}/report`;
}
