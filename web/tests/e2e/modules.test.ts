// The bench, tracer and collector pages against their real modules in one
// telekernd (auth on): a benchmark run with live progress, cancelled and
// compared; a trace over the embedded broker; the sample DCGM CSV through
// the broker into SQLite; and both modules' HTML reports opened in a new
// tab through a report ticket, their Plotly charts drawn without a console
// error, under the report's own CSP.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, BrowserContext, Page } from 'playwright-core';
import { Daemon, USERS } from './daemon';
import { PHONE, launch, openPage, screenshot } from './browser';

const BENCH = 'telekern.bench.v1.Bench';
const BROKER = 'telekern.broker.v1.Broker';
const COLLECTOR = 'telekern.collector.v1.Collector';
const SAMPLE_CSV = resolve(__dirname, '../../../deploy/samples/dcgm_sample.csv');
const SAMPLE_ROWS = 25_920;
// One GPU's points of one metric in the sample: 25,920 rows / 24 GPUs / 12 metrics.
const SERIES_POINTS = 90;

// Polls up to 15 s: pages wait on the daemon, which shares two cores.
const poll = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000 });

let daemon: Daemon;
let browser: Browser;
let admin: string;

beforeAll(async () => {
  daemon = new Daemon({
    auth: true,
    modules: ['broker', 'bench', 'tracer', 'collector'],
    // Runs stay valid on a loaded machine (no delay bound that matters);
    // a replay re-stamps the sample's rows to now (a scrape 1 ms after the
    // previous one), unpaced here.
    extraYaml: ['modules:', '  bench:', '    window: 1s', '    health_interval: 1s', '    max_publish_delay: 60s', '  collector:', '    replay_rate: 1000000000'].join('\n'),
  });
  await daemon.start();
  admin = await daemon.token('alice');
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop();
});

async function login(page: Page, user: keyof typeof USERS, path: string) {
  await page.goto(daemon.base + path);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(USERS[user].password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// Clicks `button` (an "Open report" button), takes the tab it opens and
// waits for its Plotly charts; returns the tab, what it logged, and its URL.
async function openReport(context: BrowserContext, button: import('playwright-core').Locator, charts: number) {
  const problems: string[] = [];
  const watch = (m: import('playwright-core').ConsoleMessage) => {
    if (m.page() !== button.page() && (m.type() === 'error' || m.type() === 'warning')) problems.push(`${m.type()}: ${m.text()}`);
  };
  const crash = (e: Error) => problems.push(`pageerror: ${e.message}`);
  context.on('console', watch);
  context.on('weberror', (e) => crash(e.error()));
  const response = context.waitForEvent('response', { predicate: (r) => r.url().includes('/report?ticket='), timeout: 30_000 });
  const [tab] = await Promise.all([context.waitForEvent('page'), button.click()]);
  const answer = await response;
  expect(answer.status()).toBe(200);
  const headers = await answer.allHeaders();
  expect(headers['content-type']).toBe('text/html; charset=utf-8');
  expect(headers['content-security-policy']).toContain("script-src 'unsafe-inline'");
  expect(headers['content-security-policy']).toContain('sandbox allow-scripts');
  expect(headers['cache-control']).toBe('no-store');
  await tab.waitForLoadState('load', { timeout: 30_000 });
  // Every chart drawn: a plot with its SVG layers and at least one trace.
  await expect
    .poll(() => tab.evaluate(() => [...document.querySelectorAll('.js-plotly-plot')].filter((p: any) => p.data?.length > 0 && p._fullLayout && p.querySelector('.main-svg')).length), {
      timeout: 20_000,
    })
    .toBeGreaterThanOrEqual(charts);
  // Sandboxed: an opaque origin of its own, not the console's.
  expect(await tab.evaluate(() => window.origin)).toBe('null');
  const url = tab.url();
  expect(url).toMatch(/\?ticket=[A-Za-z0-9_-]{40,}$/);
  return { tab, problems, url };
}

describe('bench page', () => {
  it('runs a workload with live progress and charts, cancels a run, compares two and opens the report', async () => {
    const w = await openPage(browser);
    await login(w.page, 'olga', '/bench');
    await poll(() => w.page.getByRole('heading', { name: 'Bench', exact: true }).count()).toBe(1);
    await poll(() => w.page.getByText('No runs yet.').count()).toBe(1);

    const form = w.page.getByTestId('bench-form');
    await form.getByLabel('Duration').fill('6s');
    await form.getByLabel('Warm-up').fill('1s');
    await form.getByLabel('Window').fill('1s');
    await form.getByRole('button', { name: 'Start run' }).click();
    const progress = w.page.getByTestId('bench-progress');
    // Live: windows arrive while the run is still going.
    await expect.poll(async () => Number(await progress.getAttribute('data-windows')), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    const midway = await progress.getByRole('status').textContent();
    expect(midway).toMatch(/\d+\/7 s/);
    expect(midway).not.toContain('completed');
    await expect.poll(() => progress.getByRole('status').textContent(), { timeout: 20_000 }).toContain('completed');
    expect(Number(await progress.getAttribute('data-windows'))).toBeGreaterThanOrEqual(6);
    expect(await progress.getByTestId('bench-done').textContent()).toBe('7/7 s');
    const charts = progress.locator('figure.chart');
    expect(await charts.count()).toBe(2);
    for (const chart of await charts.all()) expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(6);
    // The runs table lists it, with the API's figures.
    const runs = await daemon.rpc(BENCH, 'ListRuns', {}, admin);
    const first = runs.json.runs[0];
    expect(first.state).toBe('completed');
    await poll(() => w.page.getByTestId('runs').textContent()).toContain(first.runId);
    await screenshot(w.page, 'bench-laptop');

    // A long run, cancelled from the form: stored, flagged cancelled.
    await form.getByLabel('Duration').fill('60s');
    await form.getByRole('button', { name: 'Start run' }).click();
    await expect.poll(() => w.page.getByTestId('runs').textContent(), { timeout: 10_000 }).toContain('running');
    await expect.poll(async () => Number(await progress.getAttribute('data-windows')), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    await form.getByRole('button', { name: 'Cancel run' }).click();
    await expect.poll(() => progress.getByRole('status').textContent(), { timeout: 20_000 }).toContain('cancelled');
    const after = await daemon.rpc(BENCH, 'ListRuns', {}, admin);
    expect(after.json.runs.length).toBe(2);
    expect(after.json.runs[0].state).toBe('cancelled');
    await poll(() => w.page.getByTestId('runs').textContent()).toContain('cancelled');

    // Compare the two, the completed one as the baseline.
    const table = w.page.getByTestId('runs');
    await table.getByLabel(`compare ${first.runId}`).check();
    await table.getByLabel(`compare ${after.json.runs[0].runId}`).check();
    await w.page.getByRole('button', { name: 'Compare the two ticked runs' }).click();
    const compare = w.page.getByTestId('compare');
    await poll(() => compare.locator('tbody tr').count()).toBeGreaterThan(0);
    const api = await daemon.rpc(BENCH, 'Compare', { runIds: [first.runId, after.json.runs[0].runId] }, admin);
    expect(await compare.locator('thead th').allTextContents()).toEqual(api.json.header);

    // The run's summary, then its report in a new tab.
    await table.getByRole('button', { name: first.runId }).click();
    const detail = w.page.getByTestId('run-detail');
    await poll(() => detail.textContent()).toContain('completed, valid');
    const report = await openReport(w.context, detail.getByRole('button', { name: 'Open report' }), 5);
    expect(report.problems).toEqual([]);
    expect(await report.tab.title()).toContain(first.runId);
    // The ticket opened it once; the same URL again is refused.
    const again = await fetch(report.url);
    expect(again.status).toBe(401);
    expect((await again.json()).message).toContain('ticket');
    await report.tab.close();
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('offers a viewer the runs and reports but no run form, and the API refuses a viewer run', async () => {
    const w = await openPage(browser, PHONE);
    await login(w.page, 'victor', '/bench');
    await poll(() => w.page.getByTestId('runs').locator('tbody tr').count()).toBe(2);
    expect(await w.page.getByTestId('bench-form').count()).toBe(0);
    expect(await w.page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    await screenshot(w.page, 'bench-phone');
    const token = await daemon.token('victor');
    const refused = await daemon.rpc(BENCH, 'RunBenchmark', { workload: 'name: x' }, token);
    expect(refused.status).toBe(403);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('issues report tickets only for report routes and valid credentials', async () => {
    const post = (body: object, token?: string) =>
      fetch(daemon.base + '/api/report-tickets', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
    const runs = await daemon.rpc(BENCH, 'ListRuns', {}, admin);
    const path = `/bench/runs/${runs.json.runs[0].runId}/report`;
    expect((await post({ path })).status).toBe(401); // no credentials
    expect((await post({ path }, 'not-a-token')).status).toBe(401);
    expect((await post({ path: '/bench/runs' }, admin)).status).toBe(400); // JSON, not a report
    expect((await post({ path: path + '?x=1' }, admin)).status).toBe(400);
    const issued = await post({ path }, admin);
    expect(issued.status).toBe(200);
    const { url, expiresInSeconds } = await issued.json();
    expect(expiresInSeconds).toBe(60);
    expect(url.startsWith(path + '?ticket=')).toBe(true);
    // Bound to its path: another run's report refuses it (and it is spent).
    const other = `/bench/runs/${runs.json.runs[1].runId}/report` + url.slice(path.length);
    expect((await fetch(daemon.base + other)).status).toBe(401);
    expect((await fetch(daemon.base + url)).status).toBe(401);
    // Without a ticket the report route still wants credentials.
    expect((await fetch(daemon.base + path)).status).toBe(401);
  });
});

describe('tracer page over the embedded broker', () => {
  it('traces a device across topics with progress, lists the trace and opens its report', async () => {
    for (const [topic, key, value] of [
      ['orders', 'dev-42', '{"device":"dev-42","event":"ordered"}'],
      ['orders', 'dev-7', '{"device":"dev-7","event":"ordered"}'],
      ['audit', 'x', '{"device":"dev-42","event":"audited"}'],
      ['audit', 'y', '{"device":"dev-9","event":"audited"}'],
      ['shipping', 'dev-42', '{"event":"shipped"}'],
    ]) {
      const r = await daemon.rpc(BROKER, 'Produce', { topic, key, value }, admin);
      expect(r.status).toBe(200);
    }
    const w = await openPage(browser);
    await login(w.page, 'olga', '/tracer');
    const form = w.page.getByTestId('trace-form');
    await form.getByLabel('Device id').fill('dev-42');
    await form.getByLabel('Source').selectOption('SOURCE_BROKER');
    await form.getByLabel('Topics (comma-separated, empty = all)').fill('orders, audit, shipping');
    await form.getByRole('button', { name: 'Start trace' }).click();
    await expect.poll(() => form.textContent(), { timeout: 30_000 }).toContain('3 matched of 5 scanned');
    expect(await form.getByRole('status').textContent()).toMatch(/3\/3 partitions/);
    const traces = w.page.getByTestId('traces');
    await poll(() => traces.textContent()).toContain('dev-42');
    await traces.locator('tbody tr').first().getByRole('button').click();
    const detail = w.page.getByTestId('trace-detail');
    await poll(() => detail.textContent()).toContain('complete');
    await screenshot(w.page, 'tracer-laptop');
    const report = await openReport(w.context, detail.getByRole('button', { name: 'Open report' }), 1);
    expect(report.problems).toEqual([]);
    expect(await report.tab.textContent('body')).toContain('dev-42');
    await report.tab.close();
    expect(w.problems).toEqual([]);
    await w.context.close();
  }, 120_000);
});

describe('collector page with the sample CSV on the embedded broker and SQLite', () => {
  it('lists the GPUs, charts one GPU over a range and follows new points live', async () => {
    const ingest = await daemon.rpc(COLLECTOR, 'IngestCsv', { path: SAMPLE_CSV, replay: true }, admin);
    expect(ingest.status).toBe(200);
    expect(Number(ingest.json.rowsPublished)).toBe(SAMPLE_ROWS);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await daemon.rpc(COLLECTOR, 'GetStatus', {}, admin);
      if (Number(s.json.pointsWritten ?? 0) >= SAMPLE_ROWS) break;
      if (Date.now() > deadline) throw new Error(`collector stored ${JSON.stringify(s.json)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const gpus = (await daemon.rpc(COLLECTOR, 'ListGpus', {}, admin)).json.gpus;
    expect(gpus.length).toBe(24); // 3 hosts x 8 GPUs

    const w = await openPage(browser);
    await login(w.page, 'victor', '/collector');
    const table = w.page.getByTestId('gpus');
    await poll(() => table.locator('tbody tr').count()).toBe(24);
    await poll(() => w.page.getByTestId('collector-status').textContent()).toContain(`${SAMPLE_ROWS} rows ingested`);
    await poll(() => table.locator('tbody tr').first().textContent()).toMatch(/DCGM_FI_\w+ \d/);
    await screenshot(w.page, 'collector-laptop');

    await table.locator('tbody tr').first().getByRole('link').click();
    await poll(() => w.page.url()).toContain('/collector/gpus/');
    const id = decodeURIComponent(w.page.url().split('/collector/gpus/')[1]);
    const chart = w.page.locator('figure.chart');
    // The points the chart draws (0 while the history loads): every point of
    // the series, already in "the last hour" (a replay stamps no row ahead of
    // the clock by more than a millisecond per scrape).
    const points = async () => ((await chart.count()) ? Number(await chart.getAttribute('data-points')) : 0);
    await expect.poll(points, { timeout: 30_000 }).toBe(SERIES_POINTS);
    const metric = await w.page.getByLabel('Metric').inputValue();
    expect(metric).toMatch(/^DCGM_FI_/);
    const before = await points();
    // Live: a point submitted now arrives through WatchTelemetry.
    const gpu = gpus.find((g: any) => g.id === id);
    expect(gpu).toBeTruthy();
    await expect
      .poll(
        async () => {
          const r = await daemon.rpc(
            COLLECTOR,
            'SubmitTelemetry',
            { deviceId: gpu.device, gpuId: gpu.gpuId, uuid: gpu.uuid, modelName: gpu.modelName, hostname: gpu.hostname, metric, value: 42 },
            admin,
          );
          expect(r.status).toBe(200);
          return points();
        },
        { timeout: 20_000, interval: 1_000 },
      )
      .toBeGreaterThan(before);
    // Another metric from the picker redraws from the history.
    const other = (await w.page.getByLabel('Metric').locator('option').allTextContents()).find((m) => m !== metric)!;
    await w.page.getByLabel('Metric').selectOption(other);
    await poll(() => chart.locator('figcaption').textContent()).toBe(other);
    await expect.poll(points, { timeout: 30_000 }).toBe(SERIES_POINTS);
    await screenshot(w.page, 'collector-gpu-laptop');
    expect(w.problems).toEqual([]);
    await w.context.close();
  }, 120_000);
});
