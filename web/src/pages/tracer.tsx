// Tracer: stored traces with their summaries and report files; start a
// trace of a device with a form and watch its progress live (TraceDevice
// streams progress, events and the final summary).
import { useRef, useState } from 'preact/hooks';
import { TRACER, roleAtLeast } from '../api';
import { ReportButton } from '../components/report';
import { ErrorNote, Loading, useLoad } from '../components/ui';
import { durationSeconds, enumLabel, humanDuration, timeOf } from '../format';
import { useConsole } from '../state';

export function TracerPage() {
  const { api, session } = useConsole();
  const traces = useLoad((signal) => api.call<{ traces?: any[] }>(TRACER, 'ListTraces', {}, signal), []);
  const [selected, setSelected] = useState<string | null>(null);
  return (
    <section>
      <h1>Tracer</h1>
      {roleAtLeast(session.role, 'ROLE_OPERATOR') && <TraceForm onDone={() => traces.reload()} />}
      <h2>Stored traces</h2>
      <ErrorNote error={traces.error} />
      {traces.loading && !traces.data && <Loading what="traces" />}
      {traces.data && (traces.data.traces ?? []).length === 0 && <p class="empty">No traces yet.</p>}
      {(traces.data?.traces ?? []).length > 0 && (
        <div class="scroll">
          <table data-testid="traces">
            <thead>
              <tr>
                <th>Trace</th>
                <th>Device</th>
                <th>Started</th>
                <th>Matched</th>
                <th>Topics</th>
                <th>Complete</th>
              </tr>
            </thead>
            <tbody>
              {(traces.data?.traces ?? []).map((t) => (
                <tr key={t.traceId}>
                  <td>
                    <button class="link" onClick={() => setSelected(t.traceId)}>
                      {t.traceId}
                    </button>
                  </td>
                  <td>{t.deviceId}</td>
                  <td>{timeOf(t.started)}</td>
                  <td>{t.matched ?? 0}</td>
                  <td>{t.topics ?? 0}</td>
                  <td>{t.complete ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selected && <TraceDetail id={selected} />}
    </section>
  );
}

function SummaryView(props: { summary: any }) {
  const s = props.summary;
  return (
    <div>
      <p>
        {s.deviceId}: {s.matched ?? 0} matched of {s.scanned ?? 0} scanned in {humanDuration(durationSeconds(s.elapsed))} from{' '}
        {enumLabel(s.source, 'SOURCE_')}; {s.complete ? 'complete' : `incomplete: ${(s.incompleteReasons ?? []).join('; ')}`}
      </p>
      {(s.files ?? []).length > 0 && (
        <>
          <h3>Report files</h3>
          <ul class="small">
            {(s.files ?? []).map((f: string) => (
              <li key={f}>{f}</li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function TraceDetail(props: { id: string }) {
  const { api } = useConsole();
  const t = useLoad((signal) => api.call<any>(TRACER, 'GetTrace', { traceId: props.id, noEvents: true }, signal), [props.id]);
  return (
    <div class="card" data-testid="trace-detail">
      <h2>Trace {props.id}</h2>
      <ErrorNote error={t.error} />
      {t.loading && !t.data && <Loading what="trace" />}
      {t.data?.summary && <SummaryView summary={t.data.summary} />}
      {t.data?.summary && <ReportButton path={`/traces/${encodeURIComponent(props.id)}/report`} />}
    </div>
  );
}

function TraceForm(props: { onDone: () => void }) {
  const { api } = useConsole();
  const [device, setDevice] = useState('');
  const [source, setSource] = useState('SOURCE_BROKER');
  const [topics, setTopics] = useState('');
  const [maxAge, setMaxAge] = useState('24h');
  const [progress, setProgress] = useState<any>(null);
  const [events, setEvents] = useState(0);
  const [summary, setSummary] = useState<any>(null);
  const [error, setError] = useState<unknown>(null);
  const running = useRef<AbortController | null>(null);
  const [busy, setBusy] = useState(false);
  const start = async (e: Event) => {
    e.preventDefault();
    const controller = new AbortController();
    running.current = controller;
    setBusy(true);
    setError(null);
    setProgress(null);
    setSummary(null);
    setEvents(0);
    const hours = /^(\d+)h$/.exec(maxAge.trim());
    try {
      await api.stream<any>(
        TRACER,
        'TraceDevice',
        {
          deviceId: device,
          source,
          topics: topics.split(',').map((t) => t.trim()).filter(Boolean),
          ...(hours ? { maxAge: `${Number(hours[1]) * 3600}s` } : {}),
        },
        (m) => {
          if (m.progress) setProgress(m.progress);
          if (m.event) setEvents((n) => n + 1);
          if (m.summary) setSummary(m.summary);
        },
        controller.signal,
      );
      props.onDone();
    } catch (err) {
      if (!controller.signal.aborted) setError(err);
    } finally {
      setBusy(false);
      running.current = null;
    }
  };
  return (
    <form class="card" onSubmit={start} data-testid="trace-form">
      <h2>Trace a device</h2>
      <div class="row">
        <label>
          Device id
          <input name="device" required value={device} onInput={(e) => setDevice(e.currentTarget.value)} />
        </label>
        <label>
          Source
          <select name="source" value={source} onChange={(e) => setSource(e.currentTarget.value)}>
            {['SOURCE_BROKER', 'SOURCE_KAFKA', 'SOURCE_SSH', 'SOURCE_EXEC'].map((s) => (
              <option key={s} value={s}>
                {enumLabel(s, 'SOURCE_')}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Topics (comma-separated, empty = all)
          <input name="topics" value={topics} onInput={(e) => setTopics(e.currentTarget.value)} />
        </label>
        <label>
          Max age (hours, e.g. 24h)
          <input name="max-age" value={maxAge} onInput={(e) => setMaxAge(e.currentTarget.value)} />
        </label>
      </div>
      <button type="submit" disabled={busy}>
        {busy ? 'Tracing…' : 'Start trace'}
      </button>
      {busy && (
        <button type="button" class="secondary" onClick={() => running.current?.abort()}>
          Cancel
        </button>
      )}
      {progress && (
        <p role="status">
          <progress max={progress.unitsTotal || 1} value={progress.unitsDone ?? 0} /> {progress.unitsDone ?? 0}/{progress.unitsTotal ?? '?'} partitions ·{' '}
          {progress.scanned ?? 0} scanned · {progress.matched ?? 0} matched · {events} events
        </p>
      )}
      <ErrorNote error={error} />
      {summary && <SummaryView summary={summary} />}
      {summary?.traceId && <ReportButton path={`/traces/${encodeURIComponent(summary.traceId)}/report`} />}
    </form>
  );
}
