// Opens a module's HTML report (tracer, bench) in a new tab through a
// one-minute, single-use report URL from the kernel: the report's inline
// scripts run under that page's own CSP, never the console's, and the
// session token stays in memory, out of every URL.
import { useState } from 'preact/hooks';
import { useConsole } from '../state';
import { ErrorNote } from './ui';

export function ReportButton(props: { path: string; label?: string }) {
  const { api } = useConsole();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const open = async () => {
    setBusy(true);
    setError(null);
    try {
      window.open(await api.reportUrl(props.path), '_blank', 'noopener');
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="report">
      <button type="button" class="secondary" onClick={open} disabled={busy} data-report={props.path}>
        {busy ? 'Opening…' : (props.label ?? 'Open report')}
      </button>
      <ErrorNote error={error} />
    </span>
  );
}
