// Kernel info and modules; admins load, unload and reload modules.
import { useState } from 'preact/hooks';
import { KERNEL, roleAtLeast } from '../api';
import { Badge, ErrorNote, Loading, useLoad } from '../components/ui';
import { durationSeconds, enumLabel, humanDuration, timeOf } from '../format';
import { useConsole } from '../state';

interface Module {
  name: string;
  version?: string;
  state?: string;
  health?: { state?: string; message?: string };
  generation?: string;
  loadTime?: string;
  error?: string;
  description?: string;
}

export function OverviewPage() {
  const { api, session, refreshModules } = useConsole();
  const admin = roleAtLeast(session.role, 'ROLE_ADMIN');
  const info = useLoad((signal) => api.call(KERNEL, 'GetInfo', {}, signal), []);
  const modules = useLoad(
    (signal) => api.call<{ modules?: Module[]; generation?: string }>(KERNEL, 'ListModules', {}, signal),
    [],
  );
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [loadName, setLoadName] = useState('');

  const act = async (method: 'LoadModule' | 'UnloadModule' | 'ReloadModule', name: string) => {
    setBusy(true);
    setOutcome(null);
    try {
      const r = await api.call<{ result?: { module?: Module; generation?: string } }>(KERNEL, method, { name });
      const m = r.result?.module;
      const verb = { LoadModule: 'loaded', UnloadModule: 'unloaded', ReloadModule: 'reloaded' }[method];
      const failed = m?.state === 'MODULE_STATE_FAILED';
      setOutcome({
        ok: !failed,
        text: failed
          ? `${name}: failed: ${m?.error}`
          : `${name} ${verb}: ${enumLabel(m?.state, 'MODULE_STATE_')}, generation ${r.result?.generation ?? '?'}`,
      });
    } catch (e) {
      setOutcome({ ok: false, text: `${name}: ${(e as Error).message}` });
    } finally {
      setBusy(false);
      await Promise.all([modules.reload(), info.reload(), refreshModules().catch(() => {})]);
    }
  };

  const i = info.data as any;
  return (
    <section>
      <h1>Overview</h1>
      <ErrorNote error={info.error} />
      {i ? (
        <dl class="card info" data-testid="kernel-info">
          <dt>Version</dt>
          <dd>
            {i.version} <small>{i.gitRevision}</small>
          </dd>
          <dt>Uptime</dt>
          <dd>{humanDuration(durationSeconds(i.uptime))}</dd>
          <dt>gRPC</dt>
          <dd>{i.grpcAddress}</dd>
          <dt>HTTP</dt>
          <dd>{i.httpAddress}</dd>
          <dt>Generation</dt>
          <dd>{i.generation}</dd>
          <dt>Auth / TLS</dt>
          <dd>
            {i.authEnabled ? 'on' : 'off (loopback only)'} / {i.tlsEnabled ? 'on' : 'off'}
          </dd>
        </dl>
      ) : (
        info.loading && <Loading what="kernel info" />
      )}
      <h2>Modules</h2>
      {outcome && (
        <p class={outcome.ok ? 'ok' : 'error'} role="status" data-testid="module-outcome">
          {outcome.text}
        </p>
      )}
      <ErrorNote error={modules.error} />
      {modules.loading && !modules.data && <Loading what="modules" />}
      {modules.data && (
        <div class="scroll">
          <table data-testid="modules">
            <thead>
              <tr>
                <th>Name</th>
                <th>Version</th>
                <th>State</th>
                <th>Health</th>
                <th>Generation</th>
                <th>Loaded</th>
                {admin && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {(modules.data.modules ?? []).map((m) => (
                <tr key={m.name} data-module={m.name}>
                  <td title={m.description}>{m.name}</td>
                  <td>{m.version}</td>
                  <td>
                    <Badge kind={enumLabel(m.state, 'MODULE_STATE_')}>{enumLabel(m.state, 'MODULE_STATE_')}</Badge>
                    {m.error && <div class="error small">{m.error}</div>}
                  </td>
                  <td title={m.health?.message}>
                    <Badge kind={enumLabel(m.health?.state, 'HEALTH_STATE_')}>
                      {enumLabel(m.health?.state, 'HEALTH_STATE_')}
                    </Badge>
                    {m.health?.message && <div class="small">{m.health.message}</div>}
                  </td>
                  <td>{m.generation}</td>
                  <td>{timeOf(m.loadTime)}</td>
                  {admin && (
                    <td class="actions">
                      <button disabled={busy} onClick={() => act('ReloadModule', m.name)}>
                        Reload
                      </button>
                      <button class="danger" disabled={busy} onClick={() => act('UnloadModule', m.name)}>
                        Unload
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {admin && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (loadName.trim()) act('LoadModule', loadName.trim());
          }}
        >
          <label>
            Load module (name or path)
            <input name="module" value={loadName} onInput={(e) => setLoadName(e.currentTarget.value)} placeholder="broker" />
          </label>
          <button type="submit" disabled={busy || !loadName.trim()}>
            Load
          </button>
        </form>
      )}
    </section>
  );
}
