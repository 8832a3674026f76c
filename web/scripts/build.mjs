// `vite build` with a clear message when `make deps` (npm ci) has not run.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const vite = `${web}node_modules/vite/bin/vite.js`;
if (!existsSync(vite)) {
  console.error(`web console: ${vite} is missing; run \`make deps\` (npm ci in web/)`);
  process.exit(1);
}
const run = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: web, stdio: 'inherit' });
process.exit(run.status ?? 1);
