// The monitor pages against a real telekernd with the broker and monitor
// modules and a synthetic publisher of two nodes: live charts, a threshold
// created in the editor, the alert it fires, acknowledgement with a note,
// CSV download compared with the API, and a viewer without controls.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, Page } from 'playwright-core';
import { Daemon, USERS } from './daemon';
import { LAPTOP, PHONE, launch, openPage, screenshot } from './browser';
import { Publisher } from './publisher';
import { base64Text, parseCsv } from '../../src/csv';

const MONITOR = 'telekern.monitor.v1.Monitor';
let daemon: Daemon;
let browser: Browser;
let publisher: Publisher;
let admin: string;

beforeAll(async () => {
  daemon = new Daemon({ auth: true, modules: ['broker', 'monitor'] });
  await daemon.start();
  admin = await daemon.token('alice');
  const created = await daemon.rpc('telekern.broker.v1.Broker', 'CreateTopic', { topic: 'metrics', partitions: 1 }, admin);
  expect([200, 409]).toContain(created.status);
  publisher = new Publisher(daemon, admin, ['node-a', 'node-b']);
  publisher.start();
  // Both nodes known to the monitor before the browser looks.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await daemon.rpc(MONITOR, 'ListNodes', {}, admin);
    if (r.status === 200 && (r.json.nodes ?? []).length === 2) break;
    if (Date.now() > deadline) throw new Error(`monitor saw no nodes: ${JSON.stringify(r.json)}\n${daemon.output()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  browser = await launch();
});

afterAll(async () => {
  publisher?.stop();
  await browser?.close();
  await daemon?.stop();
});

async function login(page: Page, user: keyof typeof USERS, path = '/monitor') {
  await page.goto(daemon.base + path);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(USERS[user].password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const points = async (page: Page, node: string) =>
  Number(await page.locator(`article[data-node="${node}"] figure.chart`).getAttribute('data-points'));

describe('monitor in chromium', () => {
  it('shows two live nodes whose charts update from the watch stream', async () => {
    const w = await openPage(browser);
    await login(w.page, 'olga');
    for (const node of ['node-a', 'node-b']) {
      const card = w.page.locator(`article[data-node="${node}"]`);
      await expect.poll(() => card.textContent()).toContain('active');
      await expect.poll(() => points(w.page, node)).toBeGreaterThan(0);
    }
    const before = await points(w.page, 'node-a');
    await expect.poll(() => points(w.page, 'node-a'), { timeout: 10_000 }).toBeGreaterThan(before + 2);
    await screenshot(w.page, 'monitor-laptop');
    await w.page.locator('article[data-node="node-a"] a').click();
    await expect.poll(() => w.page.locator('figure.chart').count()).toBe(4);
    await expect.poll(async () => Number(await w.page.locator('figure.chart').first().getAttribute('data-points'))).toBeGreaterThan(2);
    await screenshot(w.page, 'monitor-node-laptop');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('creates a threshold, shows the alert it fires and acknowledges it with a note', async () => {
    const w = await openPage(browser);
    await login(w.page, 'olga');
    await w.page.getByTestId('new-threshold').click();
    const editor = w.page.getByTestId('threshold-editor');
    await editor.getByLabel('Node').selectOption('node-a');
    await editor.getByLabel('Metric').selectOption('cpu');
    await editor.getByLabel('Condition').selectOption('>');
    await editor.getByLabel('Fire at').fill('80');
    await editor.getByLabel('Clear at').fill('60');
    await editor.getByLabel('For').fill('0s');
    await editor.getByLabel('Severity').selectOption('SEVERITY_CRITICAL');
    await editor.getByRole('button', { name: 'Create threshold' }).click();
    const table = w.page.getByTestId('thresholds');
    await expect.poll(() => table.getByRole('status').textContent()).toMatch(/Threshold \d+ created/);
    await expect.poll(() => table.locator('tbody').textContent()).toContain('node-a');

    publisher.cpu['node-a'] = 95; // the synthetic breach
    const alerts = w.page.getByTestId('alerts');
    const firing = alerts.locator('li[data-state="firing"]', { hasText: 'cpu > 80' }).filter({ hasText: 'node-a' });
    await expect.poll(() => firing.count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await screenshot(w.page, 'monitor-alert-firing');
    await firing.first().getByRole('button', { name: 'Acknowledge' }).click();
    await alerts.getByLabel('Note').fill('looking into it');
    await alerts.getByRole('button', { name: 'Confirm acknowledge' }).click();
    const acked = alerts.locator('li[data-state="acknowledged"]', { hasText: 'cpu > 80' }).filter({ hasText: 'node-a' });
    await expect.poll(() => acked.first().textContent(), { timeout: 10_000 }).toContain('acknowledged by olga');
    await expect.poll(() => acked.first().textContent()).toContain('looking into it');
    await acked.first().getByRole('button', { name: 'History' }).click();
    await expect.poll(() => acked.first().locator('ol.history').textContent()).toContain('acknowledged by olga');
    const api = await daemon.rpc(MONITOR, 'ListAlerts', { filter: 'ALERT_FILTER_ACKNOWLEDGED' }, admin);
    expect(
      api.json.alerts.some(
        (a: any) => a.nodeId === 'node-a' && a.metric === 'cpu' && a.note === 'looking into it' && a.acknowledgedBy === 'olga',
      ),
    ).toBe(true);
    publisher.cpu['node-a'] = 20;
    await screenshot(w.page, 'monitor-alert-acknowledged');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('downloads the CSV the API exports', async () => {
    publisher.stop();
    // Wait until the monitor stored everything published.
    const rows = async () => {
      const r = await fetch(`${daemon.base}/rpc/${MONITOR}/ExportCsv`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${admin}`, Accept: 'application/x-ndjson' },
        body: JSON.stringify({ node: 'node-b', since: '3600s' }),
      });
      expect(r.status).toBe(200);
      const lines = (await r.text()).split('\n').filter((l) => l.trim());
      return lines.map((l) => base64Text(JSON.parse(l).data ?? '')).join('');
    };
    let api = await rows();
    for (let i = 0; i < 50; i++) {
      await new Promise((res) => setTimeout(res, 200));
      const again = await rows();
      if (again === api) break;
      api = again;
    }
    const w = await openPage(browser);
    await login(w.page, 'victor');
    const form = w.page.getByTestId('export');
    await form.getByLabel('Node').selectOption('node-b');
    await form.getByLabel('Range').selectOption('3600');
    const downloaded = w.page.waitForEvent('download', { timeout: 45_000 });
    await form.getByRole('button', { name: 'Download CSV' }).click();
    // An error in the form ends the wait with its text.
    const failed = form.getByRole('alert').waitFor({ timeout: 45_000 }).then(async () => {
      throw new Error(`export failed in the page: ${await form.getByRole('alert').textContent()}`);
    });
    failed.catch(() => {});
    const download = await Promise.race([downloaded, failed]);
    expect(download.suggestedFilename()).toBe('telekern-monitor-node-b.csv');
    const file = readFileSync((await download.path())!, 'utf8');
    const got = parseCsv(file);
    const want = parseCsv(api);
    expect(got.length).toBeGreaterThan(2);
    expect(got[0]).toEqual(want[0]);
    expect(got).toEqual(want);
    expect(w.problems).toEqual([]);
    await w.context.close();
    publisher.start();
  });

  it('gives a viewer no editor and no acknowledge, and the API refuses', async () => {
    const w = await openPage(browser, PHONE);
    await login(w.page, 'victor');
    await expect.poll(() => w.page.locator('article[data-node="node-a"]').count()).toBe(1);
    await expect.poll(() => w.page.getByTestId('thresholds').locator('tbody tr').count()).toBeGreaterThan(0);
    expect(await w.page.getByTestId('new-threshold').count()).toBe(0);
    expect(await w.page.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    expect(await w.page.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    await screenshot(w.page, 'monitor-phone-viewer');
    const token = await daemon.token('victor');
    const upsert = await daemon.rpc(MONITOR, 'UpsertThreshold', { nodeId: '*', metric: 'cpu', condition: '>', value: 1 }, token);
    expect(upsert.status).toBe(403);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('lays the node page out on a laptop in dark mode', async () => {
    const w = await openPage(browser, LAPTOP, 'dark');
    await login(w.page, 'alice', '/monitor/nodes/node-b');
    await expect.poll(async () => Number(await w.page.locator('figure.chart').first().getAttribute('data-points'))).toBeGreaterThan(2);
    await screenshot(w.page, 'monitor-node-dark');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });
});
