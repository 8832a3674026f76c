import { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { onLinkClick } from '../router';

export function Link(props: { href: string; children: ComponentChildren; class?: string; current?: boolean }) {
  return (
    <a href={props.href} class={props.class} aria-current={props.current ? 'page' : undefined} onClick={onLinkClick}>
      {props.children}
    </a>
  );
}

export function ErrorNote(props: { error: unknown }) {
  if (!props.error) return null;
  const message = props.error instanceof Error ? props.error.message : String(props.error);
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

export function Loading(props: { what?: string }) {
  return (
    <p class="loading" aria-busy="true">
      Loading {props.what ?? ''}…
    </p>
  );
}

// Loads with `load` now and whenever `deps` change; `reload()` loads again.
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const running = useRef<AbortController | null>(null);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    running.current?.abort(); // an answer nobody waits for any more
    const controller = new AbortController();
    running.current = controller;
    setLoading(true);
    try {
      const value = await load(controller.signal);
      if (mine === generation.current) {
        setData(value);
        setError(null);
      }
    } catch (e) {
      if (mine === generation.current && (e as Error)?.name !== 'AbortError') setError(e);
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, deps);
  useEffect(() => {
    reload();
    return () => {
      generation.current++;
      // Leaving the page frees the browser's connections for the next one.
      running.current?.abort();
    };
  }, [reload]);
  return { data, error, loading, reload, setData };
}

export function Badge(props: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${props.kind}`}>{props.children}</span>;
}
