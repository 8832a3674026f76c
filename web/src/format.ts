// Formatting of protobuf-JSON values for people.

// "3600s" / "1.5s" (protobuf Duration JSON) -> seconds.
export function durationSeconds(value: string | undefined): number {
  if (!value) return 0;
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(value.trim());
  return m ? Number(m[1]) : 0;
}

// Seconds -> "2d 3h", "4m 5s", "800ms".
export function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds === 0) return '0s';
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  const units: [string, number][] = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = Math.floor(seconds);
  for (const [name, size] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ') || '0s';
}

// "30s", "5m", "1h", "1h30m" (the editor's input) -> protobuf Duration JSON.
export function parseDurationInput(text: string): string | null {
  const t = text.trim();
  if (t === '') return '0s';
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    total += n * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 'ms']!;
    matched = re.lastIndex;
  }
  if (matched !== t.length) return null;
  return `${+total.toFixed(3)}s`;
}

export function humanBytes(n: number | string | undefined): string {
  let v = Number(n ?? 0);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function timeOf(ts: string | undefined): string {
  if (!ts) return '–';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? '–' : d.toLocaleString();
}

// "NODE_STATUS_ACTIVE" -> "active" (strip the enum's prefix).
export function enumLabel(value: string | undefined, prefix: string): string {
  if (!value) return 'unknown';
  return value.startsWith(prefix) ? value.slice(prefix.length).toLowerCase() : value.toLowerCase();
}

export function num(v: number | undefined, digits = 1): string {
  return v === undefined || v === null || Number.isNaN(v) ? '–' : Number(v).toFixed(digits);
}
