// Drives a report's filterable table in Debian's chromium (playwright-core
// from web/node_modules): types into boxes and picks drop-down values step by
// step, printing after each step how many rows are visible, plus every console
// error or warning and uncaught exception, as one JSON line.
//
//   node report_filter.mjs REPORT.html '[{"type": "#events-search", "text": "dev-1"}, ...]'
//
// Steps: {"type": SELECTOR, "text": T} types T key by key (after clearing);
// {"select": SELECTOR, "value": V}; {"click": SELECTOR}. Env: TELEKERN_WEB_DIR
// (where node_modules is), TELEKERN_CHROMIUM, TABLE (default "events").
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(`${process.env.TELEKERN_WEB_DIR}/package.json`);
const { chromium } = require('playwright-core');

const [report, stepsJson] = process.argv.slice(2);
const table = process.env.TABLE || 'events';
const steps = JSON.parse(stepsJson || '[]');
const browser = await chromium.launch({
  executablePath: process.env.TELEKERN_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const result = { problems: [], rows: 0, visible: [], counts: [] };
try {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') result.problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => result.problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) result.problems.push(`network: ${r.url()}`);
  });
  await page.goto(pathToFileURL(report).href);
  await page.waitForLoadState('load');
  const visible = () => page.locator(`#${table} tbody tr:not([hidden])`).count();
  const count = () => page.locator(`#${table}-count`).textContent();
  result.rows = await page.locator(`#${table} tbody tr`).count();
  result.visible.push(await visible());
  result.counts.push(await count());
  for (const step of steps) {
    if (step.type) {
      await page.locator(step.type).fill('');
      await page.locator(step.type).pressSequentially(step.text);
    } else if (step.select) {
      await page.locator(step.select).selectOption(step.value);
    } else if (step.click) {
      await page.locator(step.click).click();
    }
    result.visible.push(await visible());
    result.counts.push(await count());
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
