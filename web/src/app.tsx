// The console shell: boot (is auth on?), login, navigation by loaded
// services, and the pages.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, BENCH, BROKER, COLLECTOR, KERNEL, MONITOR, Role, Session, TRACER } from './api';
import { ConsoleContext, ConsoleState, api } from './state';
import { matchPath, navigate, usePath } from './router';
import { Link, Loading } from './components/ui';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { BrokerPage } from './pages/broker';
import { MonitorPage, NodePage } from './pages/monitor';
import { CollectorPage, GpuPage } from './pages/collector';
import { TracerPage } from './pages/tracer';
import { BenchPage } from './pages/bench';

type Boot =
  | { kind: 'starting' }
  | { kind: 'login'; message?: string }
  | { kind: 'down'; message: string }
  | { kind: 'ready'; session: Session };

interface Page {
  path: string;
  label: string;
  service?: string; // shown only while this service is loaded
}

const pages: Page[] = [
  { path: '/', label: 'Overview' },
  { path: '/monitor', label: 'Monitor', service: MONITOR },
  { path: '/collector', label: 'Collector', service: COLLECTOR },
  { path: '/broker', label: 'Broker', service: BROKER },
  { path: '/tracer', label: 'Tracer', service: TRACER },
  { path: '/bench', label: 'Bench', service: BENCH },
];

export function App() {
  const [boot, setBoot] = useState<Boot>({ kind: 'starting' });
  const [services, setServices] = useState<Set<string>>(new Set());

  const refreshModules = useCallback(async () => {
    const r = await api.call<{ modules?: { services?: string[]; state?: string }[] }>(KERNEL, 'ListModules');
    const names = new Set<string>([KERNEL]);
    for (const m of r.modules ?? []) {
      if (m.state === 'MODULE_STATE_RUNNING') for (const s of m.services ?? []) names.add(s);
    }
    setServices(names);
  }, []);

  const start = useCallback(async () => {
    setBoot({ kind: 'starting' });
    try {
      // /health names modules only to viewers: without a token, only when
      // auth is off (a loopback daemon). Asking it first keeps a 401 (and the
      // browser's console error for it) out of every first load.
      if (await api.authOff()) {
        api.session = { token: '', user: 'local', role: 'ROLE_ADMIN' };
        await refreshModules();
        setBoot({ kind: 'ready', session: api.session });
        return;
      }
      setBoot({ kind: 'login' });
    } catch (e) {
      if (e instanceof ApiError && e.unauthenticated) setBoot({ kind: 'login' });
      else setBoot({ kind: 'down', message: (e as Error).message });
    }
  }, [refreshModules]);

  useEffect(() => {
    api.onUnauthenticated = (error) => {
      api.logout();
      setBoot({ kind: 'login', message: `Your session ended: ${error.message}. Sign in again.` });
    };
    start();
  }, [start]);

  // Expiry: back to login when the token's time is up.
  useEffect(() => {
    if (boot.kind !== 'ready' || !boot.session.expiresAt) return;
    const ms = boot.session.expiresAt - Date.now();
    const timer = setTimeout(() => {
      api.logout();
      setBoot({ kind: 'login', message: 'Your session expired. Sign in again.' });
    }, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => clearTimeout(timer);
  }, [boot]);

  const onLogin = async (session: Session) => {
    await refreshModules();
    setBoot({ kind: 'ready', session });
  };

  if (boot.kind === 'starting') return <Loading what="telekern console" />;
  if (boot.kind === 'down') {
    return (
      <main class="center">
        <h1>telekern console</h1>
        <p class="error" role="alert">
          {boot.message}
        </p>
        <button onClick={start}>Retry</button>
      </main>
    );
  }
  if (boot.kind === 'login') return <LoginPage message={boot.message} onLogin={onLogin} />;

  const state: ConsoleState = { api, session: boot.session, services, refreshModules };
  const logout = () => {
    api.logout();
    navigate('/');
    setBoot({ kind: 'login', message: 'Signed out.' });
  };
  return (
    <ConsoleContext.Provider value={state}>
      <Shell pages={pages.filter((p) => !p.service || services.has(p.service))} onLogout={logout} />
    </ConsoleContext.Provider>
  );
}

function roleName(role: Role | string): string {
  return String(role).replace('ROLE_', '').toLowerCase();
}

function Shell(props: { pages: Page[]; onLogout: () => void }) {
  const path = usePath();
  return (
    <ConsoleContext.Consumer>
      {(state) => (
        <>
          <header class="top">
            <span class="brand">telekern</span>
            <nav aria-label="Pages">
              {props.pages.map((p) => (
                <Link
                  key={p.path}
                  href={p.path}
                  current={p.path === '/' ? path === '/' : path.startsWith(p.path)}
                >
                  {p.label}
                </Link>
              ))}
            </nav>
            <span class="who" data-testid="who">
              {state!.session.user} · {roleName(state!.session.role)}
            </span>
            {state!.session.token && (
              <button class="secondary" onClick={props.onLogout}>
                Sign out
              </button>
            )}
          </header>
          <main>
            <Route path={path} services={state!.services} />
          </main>
        </>
      )}
    </ConsoleContext.Consumer>
  );
}

function Route(props: { path: string; services: Set<string> }) {
  const { path, services } = props;
  if (path === '/' || path === '/overview') return <OverviewPage />;
  const missing = (_service: string, label: string) => (
    <section>
      <h1>{label}</h1>
      <p class="empty">The {label.toLowerCase()} module is not loaded. Load it from the overview.</p>
    </section>
  );
  if (path === '/broker') return services.has(BROKER) ? <BrokerPage /> : missing(BROKER, 'Broker');
  if (path === '/monitor') return services.has(MONITOR) ? <MonitorPage /> : missing(MONITOR, 'Monitor');
  const node = matchPath('/monitor/nodes/:id', path);
  if (node) return services.has(MONITOR) ? <NodePage id={node.id} /> : missing(MONITOR, 'Monitor');
  if (path === '/tracer') return services.has(TRACER) ? <TracerPage /> : missing(TRACER, 'Tracer');
  if (path === '/bench') return services.has(BENCH) ? <BenchPage /> : missing(BENCH, 'Bench');
  if (path === '/collector') return services.has(COLLECTOR) ? <CollectorPage /> : missing(COLLECTOR, 'Collector');
  const gpu = matchPath('/collector/gpus/:id', path);
  if (gpu) return services.has(COLLECTOR) ? <GpuPage id={gpu.id} /> : missing(COLLECTOR, 'Collector');
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No page at {path}. <Link href="/">Overview</Link>
      </p>
    </section>
  );
}
