// Bench: stored benchmark runs, a run's summary and report, two runs
// compared, and a form that starts a run from an OMB workload with live
// progress (RunBenchmark streams one window per statistics window) and
// cancels it.
import { Fragment } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { BENCH, roleAtLeast } from '../api';
import { BenchRun, LATENCY_SERIES, RATE_SERIES, SAMPLE_WORKLOAD, benchReportPath } from '../bench';
import { Chart } from '../components/chart';
import { ReportButton } from '../components/report';
import { Badge, ErrorNote, Loading, useLoad } from '../components/ui';
import { num, parseDurationInput, timeOf } from '../format';
import { useConsole } from '../state';

interface RunSummary {
  runId: string;
  workload?: string;
  driver?: string;
  state?: string;
  started?: string;
  valid?: boolean;
  publishRate?: number;
  publishP99Ms?: number;
  endToEndP99Ms?: number;
  error?: string;
}

export function BenchPage() {
  const { api, session } = useConsole();
  const operator = roleAtLeast(session.role, 'ROLE_OPERATOR');
  const runs = useLoad((signal) => api.call<{ runs?: RunSummary[] }>(BENCH, 'ListRuns', {}, signal), []);
  const [selected, setSelected] = useState<string | null>(null);
  const [picked, setPicked] = useState<string[]>([]);
  const [compare, setCompare] = useState<string[] | null>(null);
  const [cancelError, setCancelError] = useState<unknown>(null);
  const list = runs.data?.runs ?? [];
  const toggle = (id: string) =>
    setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id].slice(-2)));
  const cancel = async (id: string) => {
    setCancelError(null);
    try {
      await api.call(BENCH, 'CancelRun', { runId: id });
    } catch (e) {
      setCancelError(e);
    }
    runs.reload();
  };
  return (
    <section>
      <h1>Bench</h1>
      {operator && <RunForm onChange={() => runs.reload()} />}
      <h2>Runs</h2>
      <ErrorNote error={runs.error} />
      <ErrorNote error={cancelError} />
      {runs.loading && !runs.data && <Loading what="runs" />}
      {runs.data && list.length === 0 && <p class="empty">No runs yet.</p>}
      {list.length > 0 && (
        <>
          <div class="scroll">
            <table data-testid="runs">
              <thead>
                <tr>
                  <th>
                    <span class="sr-only">Compare</span>
                  </th>
                  <th>Run</th>
                  <th>Workload</th>
                  <th>Driver</th>
                  <th>State</th>
                  <th>Started</th>
                  <th>Publish msg/s</th>
                  <th>Publish p99 ms</th>
                  <th>E2E p99 ms</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.runId} class={selected === r.runId ? 'selected' : undefined}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`compare ${r.runId}`}
                        checked={picked.includes(r.runId)}
                        onChange={() => toggle(r.runId)}
                      />
                    </td>
                    <td>
                      <button class="link" onClick={() => setSelected(r.runId)}>
                        {r.runId}
                      </button>
                    </td>
                    <td>{r.workload}</td>
                    <td>{r.driver}</td>
                    <td>
                      <Badge kind={stateKind(r.state)}>{r.state ?? 'unknown'}</Badge>{' '}
                      {r.valid === false && r.state !== 'running' && <span class="small">invalid</span>}
                    </td>
                    <td>{timeOf(r.started)}</td>
                    <td>{num(r.publishRate, 0)}</td>
                    <td>{num(r.publishP99Ms, 2)}</td>
                    <td>{num(r.endToEndP99Ms, 2)}</td>
                    <td class="actions">
                      {operator && r.state === 'running' && (
                        <button class="danger" onClick={() => cancel(r.runId)}>
                          Cancel
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p>
            <button class="secondary" disabled={picked.length !== 2} onClick={() => setCompare([...picked])}>
              Compare the two ticked runs
            </button>{' '}
            <span class="small">{picked.length === 2 ? `${picked[0]} (baseline) vs ${picked[1]}` : 'tick two runs'}</span>
          </p>
        </>
      )}
      {compare && <CompareView ids={compare} />}
      {selected && <RunDetail id={selected} />}
    </section>
  );
}

function stateKind(state: string | undefined): string {
  if (state === 'completed') return 'resolved';
  if (state === 'running') return 'starting';
  if (state === 'failed') return 'failed';
  return 'warning';
}

// The aggregated figures of OMB's result JSON worth a glance.
const FIGURES: [string, string, number][] = [
  ['aggregatedPublishLatencyAvg', 'publish latency avg ms', 3],
  ['aggregatedPublishLatency50pct', 'publish latency p50 ms', 3],
  ['aggregatedPublishLatency99pct', 'publish latency p99 ms', 3],
  ['aggregatedPublishLatencyMax', 'publish latency max ms', 3],
  ['aggregatedEndToEndLatency50pct', 'end-to-end p50 ms', 3],
  ['aggregatedEndToEndLatency99pct', 'end-to-end p99 ms', 3],
  ['aggregatedPublishDelayLatency99pct', 'publish delay p99 µs', 0],
];

function RunDetail(props: { id: string }) {
  const { api } = useConsole();
  const run = useLoad((signal) => api.call<any>(BENCH, 'GetRun', { runId: props.id }, signal), [props.id]);
  let result: any = null;
  try {
    result = run.data?.resultJson ? JSON.parse(run.data.resultJson) : null;
  } catch {
    result = null;
  }
  const s: RunSummary | undefined = run.data?.summary;
  const reasons: string[] = result?.telekern?.invalidReasons ?? result?.telekern?.invalid_reasons ?? [];
  return (
    <div class="card" data-testid="run-detail">
      <h2>Run {props.id}</h2>
      <ErrorNote error={run.error} />
      {run.loading && !run.data && <Loading what="run" />}
      {s && (
        <>
          <dl class="info">
            <dt>Workload</dt>
            <dd>{s.workload}</dd>
            <dt>Driver</dt>
            <dd>{s.driver}</dd>
            <dt>State</dt>
            <dd>
              {s.state}
              {s.valid ? ', valid' : ', invalid'}
              {reasons.length > 0 && `: ${reasons.join('; ')}`}
              {s.error && <span class="error"> {s.error}</span>}
            </dd>
            <dt>Started</dt>
            <dd>{timeOf(s.started)}</dd>
            <dt>Publish rate</dt>
            <dd>{num(s.publishRate, 1)} msg/s</dd>
            {result &&
              FIGURES.filter(([key]) => typeof result[key] === 'number').map(([key, label, digits]) => (
                <Fragment key={key}>
                  <dt>{label}</dt>
                  <dd>{num(result[key], digits)}</dd>
                </Fragment>
              ))}
            <dt>Directory</dt>
            <dd class="small">{run.data.directory}</dd>
          </dl>
          {s.state !== 'running' && <ReportButton path={benchReportPath(props.id)} />}
        </>
      )}
    </div>
  );
}

function CompareView(props: { ids: string[] }) {
  const { api } = useConsole();
  const r = useLoad((signal) => api.call<any>(BENCH, 'Compare', { runIds: props.ids }, signal), [props.ids.join(',')]);
  return (
    <div class="card" data-testid="compare">
      <h2>
        {props.ids[0]} vs {props.ids.slice(1).join(', ')}
      </h2>
      <ErrorNote error={r.error} />
      {r.loading && !r.data && <Loading what="comparison" />}
      {r.data && (
        <>
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  {(r.data.header ?? []).map((h: string) => (
                    <th key={h}>{h}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {(r.data.rows ?? []).map((row: any, i: number) => (
                  <tr key={i}>
                    {(row.cells ?? []).map((c: string, k: number) => (
                      <td key={k}>{c}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {(r.data.regressions ?? []).length > 0 ? (
            <ul class="error" data-testid="regressions">
              {(r.data.regressions ?? []).map((x: string) => (
                <li key={x}>{x}</li>
              ))}
            </ul>
          ) : (
            <p class="ok">No regressions against the baseline.</p>
          )}
        </>
      )}
    </div>
  );
}

function RunForm(props: { onChange: () => void }) {
  const { api } = useConsole();
  const [workload, setWorkload] = useState(SAMPLE_WORKLOAD);
  const [driver, setDriver] = useState('');
  const [duration, setDuration] = useState('');
  const [warmup, setWarmup] = useState('');
  const [windowText, setWindowText] = useState('2s');
  const [report, setReport] = useState(true);
  const [run, setRun] = useState<BenchRun | null>(null);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const controller = useRef<AbortController | null>(null);

  const start = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const durations: Record<string, string> = {};
    for (const [key, text] of [
      ['duration', duration],
      ['warmup', warmup],
      ['window', windowText],
    ] as const) {
      if (!text.trim()) continue;
      const parsed = parseDurationInput(text);
      if (!parsed) {
        setError(new Error(`${key} '${text}' is not a duration such as 30s, 1m or 500ms`));
        return;
      }
      durations[key] = parsed;
    }
    const current = new BenchRun(Date.now() / 1000);
    const abort = new AbortController();
    controller.current = abort;
    setRun(current);
    setBusy(true);
    let listed = false;
    try {
      await api.stream<any>(
        BENCH,
        'RunBenchmark',
        { workload, driver: driver.trim(), report, ...durations },
        (m) => {
          current.add(m);
          setVersion((v) => v + 1);
          if (m.started && !listed) {
            listed = true;
            props.onChange(); // the run is listed as running now
          }
        },
        abort.signal,
      );
    } catch (err) {
      if (!abort.signal.aborted) setError(err);
    } finally {
      controller.current = null;
      setBusy(false);
      props.onChange();
    }
  };

  // Cancels through the module, so what ran is stored (flagged invalid);
  // the stream then ends with the run's summary.
  const cancel = async () => {
    const id = run?.progress.runId;
    try {
      if (id) await api.call(BENCH, 'CancelRun', { runId: id });
      else controller.current?.abort();
    } catch (err) {
      setError(err);
      controller.current?.abort();
    }
  };

  const p = run?.progress;
  return (
    <form class="card" onSubmit={start} data-testid="bench-form">
      <h2>Run a benchmark</h2>
      <label>
        Workload (OMB YAML, or a file path on the daemon's machine)
        <textarea name="workload" rows={8} value={workload} onInput={(e) => setWorkload(e.currentTarget.value)} />
      </label>
      <div class="row">
        <label class="grow">
          Driver (empty = the module's default)
          <input
            name="driver"
            value={driver}
            placeholder="telekern, sink, redis://H:P, kafka://H:P, nats://H:P"
            onInput={(e) => setDriver(e.currentTarget.value)}
          />
        </label>
        <label>
          Duration
          <input name="duration" size={6} value={duration} placeholder="workload's" onInput={(e) => setDuration(e.currentTarget.value)} />
        </label>
        <label>
          Warm-up
          <input name="warmup" size={6} value={warmup} placeholder="workload's" onInput={(e) => setWarmup(e.currentTarget.value)} />
        </label>
        <label>
          Window
          <input name="window" size={6} value={windowText} onInput={(e) => setWindowText(e.currentTarget.value)} />
        </label>
        <label class="check">
          <input type="checkbox" name="report" checked={report} onChange={(e) => setReport(e.currentTarget.checked)} />
          HTML report
        </label>
      </div>
      <p>
        <button type="submit" disabled={busy}>
          {busy ? 'Running…' : 'Start run'}
        </button>{' '}
        {busy && (
          <button type="button" class="danger" onClick={cancel}>
            Cancel run
          </button>
        )}
      </p>
      <ErrorNote error={error} />
      {p && (p.runId || p.total > 0) && (
        <div data-testid="bench-progress" data-windows={p.windows}>
          <p role="status">
            {p.runId && <b>{p.runId}</b>} <progress max={p.total || 1} value={p.done} aria-label="run progress" />{' '}
            <span data-testid="bench-done">
              {p.done}/{p.total || '?'} s
            </span>{' '}
            · {p.windows} windows
            {p.finished && (
              <>
                {' '}
                · <Badge kind={stateKind(p.finished.state)}>{p.finished.state}</Badge>{' '}
                {p.finished.valid ? 'valid' : `invalid${p.invalidReasons.length ? ': ' + p.invalidReasons.join('; ') : ''}`}
              </>
            )}
          </p>
          {p.finished?.error && <p class="error">{p.finished.error}</p>}
          {p.healthFailures.length > 0 && <p class="small">health targets not read: {p.healthFailures.join('; ')}</p>}
          <div class="charts">
            <Chart title="Rate per window" series={RATE_SERIES} unit="msg/s" data={run!.rates.data()} version={version} />
            <Chart title="Latency per window" series={LATENCY_SERIES} unit="ms" data={run!.latencies.data()} version={version} />
          </div>
          {p.finished && p.reportPath && <ReportButton path={benchReportPath(p.runId)} />}
        </div>
      )}
    </form>
  );
}
