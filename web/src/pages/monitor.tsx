// Monitor: nodes with live charts (from WatchMetrics), alerts with
// acknowledgement and history (refreshed by WatchAlerts), thresholds with an
// editor, and CSV export. Live data comes from streams only, no polling.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api, ApiError, MONITOR, roleAtLeast } from '../api';
import { Chart } from '../components/chart';
import { Badge, ErrorNote, Link, Loading, useLoad } from '../components/ui';
import { base64Text } from '../csv';
import { durationSeconds, enumLabel, humanDuration, num, parseDurationInput, timeOf } from '../format';
import { LiveSeries } from '../series';
import { useConsole } from '../state';

export interface Sample {
  nodeId: string;
  nodeName?: string;
  time: string;
  cpuPercent?: number;
  memoryPercent?: number;
  diskReadMbps?: number;
  diskWriteMbps?: number;
  networkRxMbps?: number;
  networkTxMbps?: number;
}

interface Node {
  nodeId: string;
  nodeName?: string;
  status?: string;
  lastSeen?: string;
  latest?: Sample;
  openAlerts?: number;
  samples?: string;
}

export const METRICS = ['cpu', 'memory', 'disk_io', 'disk_read', 'disk_write', 'network', 'network_rx', 'network_tx', 'load1', 'load5', 'load15'];
const SEVERITIES = ['SEVERITY_INFO', 'SEVERITY_WARNING', 'SEVERITY_CRITICAL'];

// The chart groups of a node: title, unit, series names, values of a sample.
const GROUPS: { key: string; title: string; unit: string; names: string[]; max?: number; values: (s: Sample) => number[] }[] = [
  { key: 'cpu', title: 'CPU', unit: '%', names: ['cpu'], max: 100, values: (s) => [s.cpuPercent ?? 0] },
  { key: 'memory', title: 'Memory', unit: '%', names: ['memory'], max: 100, values: (s) => [s.memoryPercent ?? 0] },
  { key: 'disk', title: 'Disk I/O', unit: 'MB/s', names: ['read', 'write'], values: (s) => [s.diskReadMbps ?? 0, s.diskWriteMbps ?? 0] },
  { key: 'network', title: 'Network', unit: 'Mbit/s', names: ['rx', 'tx'], values: (s) => [s.networkRxMbps ?? 0, s.networkTxMbps ?? 0] },
];

const seconds = (ts: string) => Date.parse(ts) / 1000;

// Runs a server stream for as long as the component lives, reconnecting
// with backoff after errors (an expired session ends it via the API).
// An empty method runs nothing.
export function useStream<T>(
  api: Api,
  method: string,
  body: object,
  onMessage: (m: T) => void,
  deps: unknown[],
  service = MONITOR,
) {
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (!method) return;
    const controller = new AbortController();
    let delay = 500;
    (async () => {
      while (!controller.signal.aborted) {
        try {
          await api.stream<T>(service, method, body, (m) => {
            delay = 500;
            setError(null);
            handler.current(m);
          }, controller.signal);
        } catch (e) {
          if (controller.signal.aborted) return;
          if (e instanceof ApiError && (e.unauthenticated || e.httpStatus === 403 || e.httpStatus === 404)) {
            setError(e);
            return;
          }
          setError(e);
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    })();
    return () => controller.abort();
  }, deps);
  return error;
}

function StatusBadge(props: { status?: string }) {
  const s = enumLabel(props.status, 'NODE_STATUS_');
  return <Badge kind={s}>{s}</Badge>;
}

export function MonitorPage() {
  const { api } = useConsole();
  const nodes = useLoad((signal) => api.call<{ nodes?: Node[] }>(MONITOR, 'ListNodes', {}, signal), []);
  const stats = useLoad((signal) => api.call<any>(MONITOR, 'Overview', {}, signal), []);
  const [alertsVersion, setAlertsVersion] = useState(0);
  const [live, setLive] = useState<Record<string, { series: LiveSeries; latest: Sample; status?: string }>>({});
  const [version, setVersion] = useState(0);
  const liveRef = useRef(live);
  liveRef.current = live;
  const askedFor = useRef(new Set<string>());

  const seriesOf = (id: string) => {
    let entry = liveRef.current[id];
    if (!entry) {
      entry = { series: new LiveSeries(['cpu', 'memory'], 300), latest: { nodeId: id, time: '' } };
      liveRef.current = { ...liveRef.current, [id]: entry };
      setLive(liveRef.current);
    }
    return entry;
  };

  // Recent history first, so charts are not empty before the next sample.
  useEffect(() => {
    const controller = new AbortController();
    for (const n of nodes.data?.nodes ?? []) {
      api
        .call<{ samples?: Sample[] }>(MONITOR, 'MetricHistory', { nodeId: n.nodeId, since: '300s' }, controller.signal)
        .then((r) => {
          const entry = seriesOf(n.nodeId);
          for (const s of r.samples ?? []) entry.series.add(seconds(s.time), [s.cpuPercent ?? 0, s.memoryPercent ?? 0]);
          setVersion((v) => v + 1);
        })
        .catch(() => {});
    }
    return () => controller.abort();
  }, [nodes.data]);

  const streamError = useStream<{ sample?: Sample; status?: string }>(
    api,
    'WatchMetrics',
    {},
    (m) => {
      const s = m.sample;
      if (!s?.nodeId) return;
      const entry = seriesOf(s.nodeId);
      entry.series.add(seconds(s.time), [s.cpuPercent ?? 0, s.memoryPercent ?? 0]);
      entry.latest = s;
      entry.status = m.status;
      // A node seen for the first time: list nodes again, once per node.
      if (!(nodes.data?.nodes ?? []).some((n) => n.nodeId === s.nodeId) && !askedFor.current.has(s.nodeId)) {
        askedFor.current.add(s.nodeId);
        nodes.reload();
      }
      setVersion((v) => v + 1);
    },
    [],
  );

  const list = nodes.data?.nodes ?? [];
  const st = stats.data;
  return (
    <section>
      <h1>Monitor</h1>
      {st && (
        <ul class="stats" data-testid="monitor-stats">
          <li>
            <b>{st.nodes ?? 0}</b> nodes
          </li>
          <li>
            <b>{st.activeNodes ?? 0}</b> active
          </li>
          <li>
            <b>{st.staleNodes ?? 0}</b> stale
          </li>
          <li>
            <b>{st.downNodes ?? 0}</b> down
          </li>
          <li>
            <b>{st.openAlerts ?? 0}</b> open alerts
          </li>
          <li>
            <b>{st.unacknowledgedAlerts ?? 0}</b> unacknowledged
          </li>
        </ul>
      )}
      <h2>Nodes</h2>
      <ErrorNote error={nodes.error} />
      {streamError ? <ErrorNote error={streamError} /> : null}
      {nodes.loading && !nodes.data && <Loading what="nodes" />}
      {nodes.data && list.length === 0 && <p class="empty">No node has published yet. Start an agent.</p>}
      <div class="nodes">
        {list.map((n) => {
          const entry = live[n.nodeId];
          const latest = entry?.latest?.time ? entry.latest : n.latest;
          return (
            <article class="card node" key={n.nodeId} data-node={n.nodeId}>
              <header>
                <Link href={`/monitor/nodes/${encodeURIComponent(n.nodeId)}`}>{n.nodeName || n.nodeId}</Link>
                <StatusBadge status={entry?.status ?? n.status} />
                {(n.openAlerts ?? 0) > 0 && <Badge kind="alert">{n.openAlerts} alerts</Badge>}
              </header>
              <p class="small">
                CPU {num(latest?.cpuPercent)}% · memory {num(latest?.memoryPercent)}% · seen {timeOf(latest?.time ?? n.lastSeen)}
              </p>
              {entry && (
                <Chart title="CPU and memory" unit="%" max={100} series={['cpu', 'memory']} data={entry.series.data()} version={version} height={140} />
              )}
            </article>
          );
        })}
      </div>
      <AlertsPanel
        nodes={list}
        onChange={() => {
          stats.reload();
          nodes.reload();
        }}
        version={alertsVersion}
      />
      <ThresholdsPanel nodes={list} onChange={() => setAlertsVersion((v) => v + 1)} />
      <ExportPanel nodes={list} />
      <UsersPanel />
    </section>
  );
}

const RANGES: [string, number][] = [
  ['5 minutes', 300],
  ['15 minutes', 900],
  ['1 hour', 3600],
  ['6 hours', 21600],
  ['24 hours', 86400],
];

export function NodePage(props: { id: string }) {
  const { api } = useConsole();
  const [range, setRange] = useState(300);
  const node = useLoad((signal) => api.call<any>(MONITOR, 'GetNode', { nodeId: props.id }, signal), [props.id]);
  const groups = useMemo(() => GROUPS.map((g) => ({ ...g, series: new LiveSeries(g.names, range, 20000) })), [props.id, range]);
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState<string | undefined>(undefined);
  const [history, setHistory] = useState<{ loading: boolean; error: unknown; truncated?: boolean }>({ loading: true, error: null });

  useEffect(() => {
    const controller = new AbortController();
    setHistory({ loading: true, error: null });
    api
      .call<{ samples?: Sample[]; truncated?: boolean }>(MONITOR, 'MetricHistory', { nodeId: props.id, since: `${range}s`, limit: 20000 }, controller.signal)
      .then((r) => {
        for (const s of r.samples ?? []) for (const g of groups) g.series.add(seconds(s.time), g.values(s));
        setHistory({ loading: false, error: null, truncated: r.truncated });
        setVersion((v) => v + 1);
      })
      .catch((e) => {
        if (!controller.signal.aborted) setHistory({ loading: false, error: e });
      });
    return () => controller.abort();
  }, [groups]);

  const streamError = useStream<{ sample?: Sample; status?: string }>(
    api,
    'WatchMetrics',
    { nodeId: props.id },
    (m) => {
      if (!m.sample) return;
      for (const g of groups) g.series.add(seconds(m.sample.time), g.values(m.sample));
      setStatus(m.status);
      setVersion((v) => v + 1);
    },
    [props.id, groups],
  );

  const n = node.data?.node;
  return (
    <section>
      <p>
        <Link href="/monitor">← Monitor</Link>
      </p>
      <h1>
        {n?.nodeName || props.id} <StatusBadge status={status ?? n?.status} />
      </h1>
      <ErrorNote error={node.error} />
      {n && (
        <p class="small">
          first seen {timeOf(n.firstSeen)} · last seen {timeOf(n.lastSeen)} · interval {humanDuration(durationSeconds(n.interval))} · {n.samples ?? 0} samples
        </p>
      )}
      <div class="row">
        <label>
          Range
          <select value={range} onChange={(e) => setRange(Number(e.currentTarget.value))} name="range">
            {RANGES.map(([label, s]) => (
              <option key={s} value={s}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {history.loading && <Loading what="history" />}
      <ErrorNote error={history.error ?? streamError} />
      {history.truncated && <p class="note">History truncated to the most recent samples.</p>}
      <div class="charts">
        {groups.map((g) => (
          <Chart key={g.key} title={g.title} unit={g.unit} series={g.names} max={g.max} data={g.series.data()} version={version} />
        ))}
      </div>
      <AlertsPanel nodes={n ? [n] : []} nodeId={props.id} onChange={() => node.reload()} version={0} />
      <ThresholdsPanel nodes={n ? [n] : []} nodeId={props.id} onChange={() => node.reload()} />
    </section>
  );
}

// ---- alerts ----

const FILTERS: [string, string][] = [
  ['ALERT_FILTER_UNACKNOWLEDGED', 'Unacknowledged'],
  ['ALERT_FILTER_OPEN', 'Open'],
  ['ALERT_FILTER_ACKNOWLEDGED', 'Acknowledged'],
  ['ALERT_FILTER_RESOLVED', 'Resolved'],
  ['ALERT_FILTER_ALL', 'All'],
];

function AlertsPanel(props: { nodes: Node[]; nodeId?: string; onChange: () => void; version: number }) {
  const { api, session } = useConsole();
  const operator = roleAtLeast(session.role, 'ROLE_OPERATOR');
  const [filter, setFilter] = useState('ALERT_FILTER_ALL');
  const [severity, setSeverity] = useState('');
  const [node, setNode] = useState(props.nodeId ?? '');
  const alerts = useLoad(
    (signal) =>
      api.call<{ alerts?: any[] }>(MONITOR, 'ListAlerts', { filter, severity: severity || undefined, nodeId: node || undefined, limit: 200 }, signal),
    [filter, severity, node, props.version],
  );
  const reloadTimer = useRef<number | undefined>(undefined);
  const streamError = useStream<any>(
    api,
    'WatchAlerts',
    props.nodeId ? { nodeId: props.nodeId } : {},
    (m) => {
      if (m.initial) return;
      // Coalesce bursts of changes into one reload.
      clearTimeout(reloadTimer.current);
      reloadTimer.current = setTimeout(() => {
        alerts.reload();
        props.onChange();
      }, 100) as unknown as number;
    },
    [props.nodeId],
  );
  useEffect(() => () => clearTimeout(reloadTimer.current), []);
  return (
    <div class="card" data-testid="alerts">
      <h2>Alerts</h2>
      <div class="row filters">
        <label>
          Show
          <select name="alert-filter" value={filter} onChange={(e) => setFilter(e.currentTarget.value)}>
            {FILTERS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <label>
          Severity
          <select name="alert-severity" value={severity} onChange={(e) => setSeverity(e.currentTarget.value)}>
            <option value="">any</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {enumLabel(s, 'SEVERITY_')}
              </option>
            ))}
          </select>
        </label>
        {!props.nodeId && (
          <label>
            Node
            <select name="alert-node" value={node} onChange={(e) => setNode(e.currentTarget.value)}>
              <option value="">any</option>
              {props.nodes.map((n) => (
                <option key={n.nodeId} value={n.nodeId}>
                  {n.nodeName || n.nodeId}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <ErrorNote error={alerts.error ?? streamError} />
      {alerts.loading && !alerts.data && <Loading what="alerts" />}
      {alerts.data && (alerts.data.alerts ?? []).length === 0 && <p class="empty">No alerts.</p>}
      <ul class="alerts">
        {(alerts.data?.alerts ?? []).map((a) => (
          <AlertItem key={a.id} alert={a} canAck={operator} onAcked={() => alerts.reload()} />
        ))}
      </ul>
    </div>
  );
}

function AlertItem(props: { alert: any; canAck: boolean; onAcked: () => void }) {
  const { api } = useConsole();
  const a = props.alert;
  const [acking, setAcking] = useState(false);
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [history, setHistory] = useState<any[] | null>(null);
  const state = enumLabel(a.state, 'ALERT_STATE_');
  const ack = async (e: Event) => {
    e.preventDefault();
    try {
      await api.call(MONITOR, 'AcknowledgeAlert', { id: a.id, note });
      setAcking(false);
      props.onAcked();
    } catch (err) {
      setError(err);
    }
  };
  const toggleHistory = async () => {
    if (history) return setHistory(null);
    try {
      const r = await api.call<{ events?: any[] }>(MONITOR, 'AlertHistory', { alertId: a.id });
      setHistory(r.events ?? []);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <li class={`alert alert-${state}`} data-alert={a.id} data-state={state}>
      <div class="row">
        <Badge kind={enumLabel(a.severity, 'SEVERITY_')}>{enumLabel(a.severity, 'SEVERITY_')}</Badge>
        <Badge kind={state}>{state}</Badge>
        <span class="grow">
          <b>{a.nodeName || a.nodeId}</b>{' '}
          {a.metric === 'node_status' ? (
            a.message
          ) : (
            <>
              {a.metric} {a.condition} {a.thresholdValue} (value {num(a.value)}, now {num(a.lastValue)})
              {a.message && <span class="small"> — {a.message}</span>}
            </>
          )}
        </span>
        <span class="small">{timeOf(a.firedAt)}</span>
        <button class="secondary" onClick={toggleHistory} aria-expanded={!!history}>
          History
        </button>
        {props.canAck && state === 'firing' && !acking && <button onClick={() => setAcking(true)}>Acknowledge</button>}
      </div>
      {a.acknowledgedBy && (
        <p class="small">
          acknowledged by {a.acknowledgedBy} {timeOf(a.acknowledgedAt)}
          {a.note && <>: “{a.note}”</>}
        </p>
      )}
      {acking && (
        <form class="row" onSubmit={ack}>
          <label class="grow">
            Note
            <input name="note" value={note} onInput={(e) => setNote(e.currentTarget.value)} autoFocus />
          </label>
          <button type="submit">Confirm acknowledge</button>
          <button type="button" class="secondary" onClick={() => setAcking(false)}>
            Cancel
          </button>
        </form>
      )}
      <ErrorNote error={error} />
      {history && (
        <ol class="history small">
          {history.map((h, i) => (
            <li key={i}>
              {timeOf(h.time)} {enumLabel(h.state, 'ALERT_STATE_')} by {h.actor} {h.note ? `: ${h.note}` : ''} {h.value !== undefined ? `(value ${num(h.value)})` : ''}
            </li>
          ))}
        </ol>
      )}
    </li>
  );
}

// ---- thresholds ----

interface ThresholdForm {
  id?: string;
  nodeId: string;
  metric: string;
  condition: string;
  value: string;
  clearValue: string;
  forText: string;
  severity: string;
  enabled: boolean;
}

const emptyForm = (nodeId = '*'): ThresholdForm => ({
  nodeId,
  metric: 'cpu',
  condition: '>',
  value: '90',
  clearValue: '',
  forText: '0s',
  severity: 'SEVERITY_WARNING',
  enabled: true,
});

function ThresholdsPanel(props: { nodes: Node[]; nodeId?: string; onChange: () => void }) {
  const { api, session } = useConsole();
  const operator = roleAtLeast(session.role, 'ROLE_OPERATOR');
  const list = useLoad(
    (signal) => api.call<{ thresholds?: any[] }>(MONITOR, 'ListThresholds', props.nodeId ? { nodeId: props.nodeId } : {}, signal),
    [props.nodeId],
  );
  const [form, setForm] = useState<ThresholdForm | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [outcome, setOutcome] = useState<string | null>(null);
  const set = (patch: Partial<ThresholdForm>) => setForm((f) => ({ ...f!, ...patch }));

  const save = async (e: Event) => {
    e.preventDefault();
    if (!form) return;
    const forDuration = parseDurationInput(form.forText);
    if (forDuration === null) return setError(new Error(`'${form.forText}' is not a duration (e.g. 30s, 5m, 1h)`));
    const body: Record<string, unknown> = {
      nodeId: form.nodeId || '*',
      metric: form.metric,
      condition: form.condition,
      value: Number(form.value),
      severity: form.severity,
      for: forDuration,
      enabled: form.enabled,
    };
    if (form.id) body.id = form.id;
    if (form.clearValue.trim() !== '') body.clearThreshold = Number(form.clearValue);
    try {
      const r = await api.call<any>(MONITOR, 'UpsertThreshold', body);
      setOutcome(`Threshold ${r.threshold?.id} ${r.created ? 'created' : 'updated'}`);
      setForm(null);
      setError(null);
      list.reload();
      props.onChange();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (id: string) => {
    try {
      await api.call(MONITOR, 'DeleteThreshold', { id });
      setOutcome(`Threshold ${id} deleted`);
      list.reload();
      props.onChange();
    } catch (err) {
      setError(err);
    }
  };
  const edit = (t: any) =>
    setForm({
      id: t.id,
      nodeId: t.nodeId,
      metric: t.metric,
      condition: t.condition,
      value: String(t.value ?? 0),
      clearValue: t.clearThreshold === undefined ? '' : String(t.clearThreshold),
      forText: humanDuration(durationSeconds(t.for)).replace(' ', ''),
      severity: t.severity ?? 'SEVERITY_WARNING',
      enabled: !!t.enabled,
    });

  return (
    <div class="card" data-testid="thresholds">
      <h2>Thresholds</h2>
      <ErrorNote error={list.error} />
      {outcome && (
        <p class="ok" role="status">
          {outcome}
        </p>
      )}
      {list.loading && !list.data && <Loading what="thresholds" />}
      {list.data && (list.data.thresholds ?? []).length === 0 && <p class="empty">No thresholds.</p>}
      {list.data && (list.data.thresholds ?? []).length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>Node</th>
                <th>Metric</th>
                <th>Fires</th>
                <th>Clears</th>
                <th>For</th>
                <th>Severity</th>
                <th>Enabled</th>
                {operator && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {(list.data.thresholds ?? []).map((t) => (
                <tr key={t.id} data-threshold={t.id}>
                  <td>{t.nodeId === '*' ? 'every node' : t.nodeId}</td>
                  <td>{t.metric}</td>
                  <td>
                    {t.condition} {t.value ?? 0}
                  </td>
                  <td>{t.clearThreshold ?? t.value ?? 0}</td>
                  <td>{humanDuration(durationSeconds(t.for))}</td>
                  <td>{enumLabel(t.severity, 'SEVERITY_')}</td>
                  <td>{t.enabled ? 'yes' : 'no'}</td>
                  {operator && (
                    <td class="actions">
                      <button class="secondary" onClick={() => edit(t)}>
                        Edit
                      </button>
                      <button class="danger" onClick={() => remove(t.id)}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {operator && !form && (
        <button onClick={() => setForm(emptyForm(props.nodeId ?? '*'))} data-testid="new-threshold">
          New threshold
        </button>
      )}
      {operator && form && (
        <form class="editor" onSubmit={save} data-testid="threshold-editor">
          <div class="row">
            <label>
              Node
              <select name="nodeId" value={form.nodeId} onChange={(e) => set({ nodeId: e.currentTarget.value })}>
                <option value="*">every node (global)</option>
                {props.nodes.map((n) => (
                  <option key={n.nodeId} value={n.nodeId}>
                    {n.nodeName || n.nodeId}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Metric
              <select name="metric" value={form.metric} onChange={(e) => set({ metric: e.currentTarget.value })}>
                {METRICS.map((m) => (
                  <option key={m}>{m}</option>
                ))}
              </select>
            </label>
            <label>
              Condition
              <select name="condition" value={form.condition} onChange={(e) => set({ condition: e.currentTarget.value })}>
                {['>', '>=', '<', '<='].map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            </label>
            <label>
              Fire at
              <input name="value" type="number" step="any" required value={form.value} onInput={(e) => set({ value: e.currentTarget.value })} />
            </label>
            <label>
              Clear at
              <input name="clearValue" type="number" step="any" placeholder="= fire" value={form.clearValue} onInput={(e) => set({ clearValue: e.currentTarget.value })} />
            </label>
            <label>
              For
              <input name="for" value={form.forText} onInput={(e) => set({ forText: e.currentTarget.value })} placeholder="30s" />
            </label>
            <label>
              Severity
              <select name="severity" value={form.severity} onChange={(e) => set({ severity: e.currentTarget.value })}>
                {SEVERITIES.map((s) => (
                  <option key={s} value={s}>
                    {enumLabel(s, 'SEVERITY_')}
                  </option>
                ))}
              </select>
            </label>
            <label class="check">
              <input name="enabled" type="checkbox" checked={form.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} />
              Enabled
            </label>
          </div>
          <ErrorNote error={error} />
          <button type="submit">{form.id ? 'Save threshold' : 'Create threshold'}</button>
          <button type="button" class="secondary" onClick={() => setForm(null)}>
            Cancel
          </button>
        </form>
      )}
      {!form && <ErrorNote error={error} />}
    </div>
  );
}

// ---- export ----

function ExportPanel(props: { nodes: Node[] }) {
  const { api } = useConsole();
  const [node, setNode] = useState('');
  const [range, setRange] = useState(3600);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const download = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const chunks = await api.collect<{ data?: string }>(MONITOR, 'ExportCsv', { node, since: `${range}s` });
      const text = chunks.map((c) => base64Text(c.data ?? '')).join('');
      const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `telekern-monitor-${node || 'all'}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={download} data-testid="export">
      <h2>Export CSV</h2>
      <div class="row">
        <label>
          Node
          <select name="export-node" value={node} onChange={(e) => setNode(e.currentTarget.value)}>
            <option value="">every node</option>
            {props.nodes.map((n) => (
              <option key={n.nodeId} value={n.nodeId}>
                {n.nodeName || n.nodeId}
              </option>
            ))}
          </select>
        </label>
        <label>
          Range
          <select name="export-range" value={range} onChange={(e) => setRange(Number(e.currentTarget.value))}>
            {RANGES.map(([label, s]) => (
              <option key={s} value={s}>
                last {label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Exporting…' : 'Download CSV'}
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}

// ---- users (admins) ----

function UsersPanel() {
  const { api, session } = useConsole();
  const admin = roleAtLeast(session.role, 'ROLE_ADMIN');
  const users = useLoad(
    (signal) => (admin ? api.call<{ users?: any[] }>(MONITOR, 'ListUsers', {}, signal) : Promise.resolve({ users: [] })),
    [admin],
  );
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('ROLE_VIEWER');
  const [error, setError] = useState<unknown>(null);
  if (!admin) return null;
  const add = async (e: Event) => {
    e.preventDefault();
    try {
      await api.call(MONITOR, 'CreateUser', { name, password, role });
      setName('');
      setPassword('');
      setError(null);
      users.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (user: string) => {
    try {
      await api.call(MONITOR, 'DeleteUser', { name: user });
      users.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="card" data-testid="users">
      <h2>Monitor users</h2>
      <ErrorNote error={users.error ?? error} />
      {(users.data?.users ?? []).length === 0 ? (
        <p class="empty">No monitor users.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Created</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {(users.data?.users ?? []).map((u) => (
              <tr key={u.name}>
                <td>{u.name}</td>
                <td>{enumLabel(u.role, 'ROLE_')}</td>
                <td>{timeOf(u.createdAt)}</td>
                <td>
                  <button class="danger" onClick={() => remove(u.name)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="row" onSubmit={add}>
        <label>
          Name
          <input name="user-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="user-password" type="password" autoComplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select name="user-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            <option value="ROLE_VIEWER">viewer</option>
            <option value="ROLE_OPERATOR">operator</option>
            <option value="ROLE_ADMIN">admin</option>
          </select>
        </label>
        <button type="submit">Add user</button>
      </form>
    </div>
  );
}
