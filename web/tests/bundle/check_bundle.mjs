// Fails when the built console names an external URL (a CDN, a font host,
// an analytics script): the console must work offline, from telekernd alone.
// XML namespace names (http://www.w3.org/2000/svg ...) identify, they are
// never fetched, so they are allowed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = process.argv[2];
if (!root) {
  console.error('usage: check_bundle.mjs BUILT_CONSOLE_DIR');
  process.exit(2);
}
const namespaces = new Set([
  'http://www.w3.org/2000/svg',
  'http://www.w3.org/1999/xhtml',
  'http://www.w3.org/1999/xlink',
  'http://www.w3.org/XML/1998/namespace',
  'http://www.w3.org/2000/xmlns/',
  'http://www.w3.org/1998/Math/MathML',
]);
// Any scheme-qualified or protocol-relative URL in code, markup or CSS.
const urlPattern = /\b(?:https?|wss?|ftp):\/\/[^\s"'`)<>\\]*|(?<![:\w/])\/\/[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:\/[^\s"'`)<>\\]*)?/gi;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

let checked = 0;
const found = [];
let sawIndex = false;
for (const file of files(root)) {
  if (!/\.(html|js|mjs|css|svg|json|webmanifest)$/.test(file)) continue;
  if (file.endsWith('index.html')) sawIndex = true;
  checked++;
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(urlPattern)) {
    const url = match[0].replace(/[.,;]+$/, '');
    if (namespaces.has(url)) continue;
    found.push(`${relative(root, file)}: ${url}`);
  }
}
if (!sawIndex) {
  console.error(`${root}: no index.html (is the console built?)`);
  process.exit(1);
}
if (found.length) {
  console.error(`external URLs in the built console (${found.length}):\n  ${found.join('\n  ')}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
console.log(`${checked} files of ${root} name no external URL`);
console.log('1 passed, 0 failed');
