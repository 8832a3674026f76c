// Collector: GPUs with host, model and latest values; one GPU's telemetry
// over a chosen range with a metric picker and a live mode (WatchTelemetry).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { COLLECTOR } from '../api';
import { Chart } from '../components/chart';
import { ErrorNote, Link, Loading, useLoad } from '../components/ui';
import { enumLabel, num, timeOf } from '../format';
import { LiveSeries } from '../series';
import { useConsole } from '../state';
import { useStream } from './monitor';

interface Gpu {
  id: string;
  gpuId?: string;
  device?: string;
  uuid?: string;
  modelName?: string;
  hostname?: string;
  lastSeen?: string;
}

interface Point {
  time: string;
  metricName: string;
  value?: number;
}

const RANGES: [string, number][] = [
  ['15 minutes', 900],
  ['1 hour', 3600],
  ['6 hours', 21600],
  ['24 hours', 86400],
  ['7 days', 604800],
];

// The newest value of each metric among points.
export function latestByMetric(points: Point[]): Record<string, Point> {
  const out: Record<string, Point> = {};
  for (const p of points) {
    const seen = out[p.metricName];
    if (!seen || Date.parse(p.time) >= Date.parse(seen.time)) out[p.metricName] = p;
  }
  return out;
}

// The points of the last scrape interval before the GPU was last seen (one
// small page a row: a table of many GPUs asks for all of them at once).
function LatestValues(props: { id: string; lastSeen?: string }) {
  const { api } = useConsole();
  const r = useLoad(
    (signal) => {
      const last = props.lastSeen ? Date.parse(props.lastSeen) : NaN;
      const range = Number.isNaN(last)
        ? { since: '60s' }
        : { start: new Date(last - 30_000).toISOString(), end: new Date(last + 1).toISOString() };
      return api.call<{ points?: Point[] }>(COLLECTOR, 'GetGpuTelemetry', { id: props.id, ...range, limit: 200 }, signal);
    },
    [props.id, props.lastSeen],
  );
  if (r.error) return <span class="error small">{(r.error as Error).message}</span>;
  if (!r.data) return <span class="small">…</span>;
  const latest = Object.values(latestByMetric(r.data.points ?? [])).slice(0, 4);
  if (!latest.length) return <span class="small">no recent values</span>;
  return <span class="small">{latest.map((p) => `${p.metricName} ${num(p.value)}`).join(' · ')}</span>;
}

export function CollectorPage() {
  const { api } = useConsole();
  const gpus = useLoad((signal) => api.call<{ gpus?: Gpu[] }>(COLLECTOR, 'ListGpus', {}, signal), []);
  const status = useLoad((signal) => api.call<any>(COLLECTOR, 'GetStatus', {}, signal), []);
  const s = status.data;
  return (
    <section>
      <h1>Collector</h1>
      {s && (
        <ul class="stats" data-testid="collector-status">
          <li>
            store <b>{s.store}</b> {s.storeReachable ? 'reachable' : <span class="error">unreachable {s.storeError}</span>}
          </li>
          <li>breaker {enumLabel(s.breaker, 'BREAKER_STATE_')}</li>
          <li>
            <b>{s.rowsIngested ?? 0}</b> rows ingested
          </li>
          <li>
            <b>{s.rowsWaiting ?? 0}</b> waiting
          </li>
        </ul>
      )}
      <ErrorNote error={gpus.error ?? status.error} />
      {gpus.loading && !gpus.data && <Loading what="GPUs" />}
      {gpus.data && (gpus.data.gpus ?? []).length === 0 && <p class="empty">No GPU has reported yet.</p>}
      {gpus.data && (gpus.data.gpus ?? []).length > 0 && (
        <div class="scroll">
          <table data-testid="gpus">
            <thead>
              <tr>
                <th>GPU</th>
                <th>Host</th>
                <th>Model</th>
                <th>Latest values</th>
                <th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              {(gpus.data.gpus ?? []).map((g) => (
                <tr key={g.id}>
                  <td>
                    <Link href={`/collector/gpus/${encodeURIComponent(g.id)}`}>{g.device || g.gpuId || g.id}</Link>
                  </td>
                  <td>{g.hostname}</td>
                  <td>{g.modelName}</td>
                  <td>
                    <LatestValues id={g.id} lastSeen={g.lastSeen} />
                  </td>
                  <td>{timeOf(g.lastSeen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function GpuPage(props: { id: string }) {
  const { api } = useConsole();
  const [range, setRange] = useState(3600);
  const [metric, setMetric] = useState('');
  const [live, setLive] = useState(true);
  const history = useLoad(
    (signal) =>
      api.call<{ points?: Point[] }>(
        COLLECTOR,
        'GetGpuTelemetry',
        // Long ranges come downsampled to about 500 points.
        { id: props.id, since: `${range}s`, limit: 10000, ...(range > 3600 ? { window: `${Math.ceil(range / 500)}s` } : {}) },
        signal,
      ),
    [props.id, range],
  );
  const metrics = useMemo(() => [...new Set((history.data?.points ?? []).map((p) => p.metricName))].sort(), [history.data]);
  const chosen = metric || metrics[0] || '';
  const series = useMemo(() => {
    const s = new LiveSeries([chosen], range, 20000);
    for (const p of history.data?.points ?? []) if (p.metricName === chosen) s.add(Date.parse(p.time) / 1000, [p.value ?? 0]);
    return s;
  }, [history.data, chosen, range]);
  const [version, setVersion] = useState(0);
  useEffect(() => setVersion((v) => v + 1), [series]);
  const streamError = useStream<{ point?: Point }>(
    api,
    live && chosen ? 'WatchTelemetry' : '',
    { id: props.id, metric: chosen ? [chosen] : [] },
    (m) => {
      if (!m.point || m.point.metricName !== chosen) return;
      series.add(Date.parse(m.point.time) / 1000, [m.point.value ?? 0]);
      setVersion((v) => v + 1);
    },
    [props.id, chosen, live, series],
    COLLECTOR,
  );
  return (
    <section>
      <p>
        <Link href="/collector">← Collector</Link>
      </p>
      <h1>GPU {props.id}</h1>
      <div class="row">
        <label>
          Range
          <select name="range" value={range} onChange={(e) => setRange(Number(e.currentTarget.value))}>
            {RANGES.map(([label, s]) => (
              <option key={s} value={s}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Metric
          <select name="metric" value={chosen} onChange={(e) => setMetric(e.currentTarget.value)}>
            {metrics.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label class="check">
          <input type="checkbox" name="live" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} />
          Live
        </label>
      </div>
      {history.loading && <Loading what="telemetry" />}
      <ErrorNote error={history.error ?? streamError} />
      {history.data && !chosen && <p class="empty">No telemetry in this range.</p>}
      {chosen && <Chart title={chosen} unit="" series={[chosen]} data={series.data()} version={version} height={260} />}
    </section>
  );
}
