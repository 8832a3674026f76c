// The console against a real telekernd (auth on, broker loaded): how the
// kernel serves it, login, overview with module admin, broker, roles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from 'playwright-core';
import { Daemon, USERS } from './daemon';
import { LAPTOP, PHONE, launch, openPage, screenshot } from './browser';

const KERNEL = 'telekern.kernel.v1.Kernel';
let daemon: Daemon;
let browser: Browser;

beforeAll(async () => {
  daemon = new Daemon({ auth: true, modules: ['broker'] });
  await daemon.start();
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop();
});

async function login(page: import('playwright-core').Page, user: keyof typeof USERS, password: string = USERS[user].password) {
  await page.goto(daemon.base + '/');
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('the kernel serves the console', () => {
  it('answers / with index.html, a self-only CSP and revalidation', async () => {
    const r = await fetch(daemon.base + '/');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    const html = await r.text();
    expect(html).toContain('<div id="app">');
    const etag = r.headers.get('etag')!;
    const again = await fetch(daemon.base + '/', { headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);

    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1];
    const js = await fetch(daemon.base + script, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(js.status).toBe(200);
    // Precompressed at build time (br/gzip), sent as is.
    expect(js.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect(await js.text()).toContain('telekern');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const css = /href="(\/assets\/[^"]+\.css)"/.exec(html)![1];
    expect((await fetch(daemon.base + css)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(daemon.base + '/favicon.svg')).headers.get('content-type')).toBe('image/svg+xml');
  });

  it('falls back to index.html for app routes a browser opens, not for API clients', async () => {
    const page = await fetch(daemon.base + '/monitor/nodes/n1', { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
    const api = await fetch(daemon.base + '/monitor/nodes/n1', { headers: { Accept: 'application/json' } });
    expect(api.status).toBe(404);
    expect((await api.json()).message).toContain('no route');
    expect((await fetch(daemon.base + '/assets/missing.js', { headers: { Accept: 'text/html' } })).status).toBe(404);
    expect((await fetch(daemon.base + '/%2e%2e/%2e%2e/etc/passwd', { headers: { Accept: '*/*' } })).status).toBe(404);
    expect((await fetch(daemon.base + '/.hidden', { headers: { Accept: '*/*' } })).status).toBe(404);
  });

  it('keeps the gateway: REST routes, /rpc and the docs page', async () => {
    const token = await daemon.token('victor');
    const topics = await fetch(daemon.base + '/topics', { headers: { Authorization: `Bearer ${token}`, Accept: 'text/html' } });
    expect(topics.status).toBe(200);
    expect(topics.headers.get('content-type')).toContain('application/json');
    const info = await daemon.rpc(KERNEL, 'GetInfo', {}, token);
    expect(info.status).toBe(200);
    const docs = await fetch(daemon.base + '/api/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).toContain('unsafe-inline'); // its own inline page
  });
});

describe('in chromium', () => {
  it('shows an error for a wrong password and stays on the login page', async () => {
    const w = await openPage(browser);
    await login(w.page, 'alice', 'not-the-password');
    await expect.poll(() => w.page.getByRole('alert').textContent()).toMatch(/password|user/i);
    await expect.poll(() => w.page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);
    await screenshot(w.page, 'login-wrong-password');
    // The only console message: the browser's own note of the 401 answer.
    expect(w.problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
    await w.context.close();
  });

  it('lets an admin see the kernel and reload a module, at laptop and phone sizes', async () => {
    for (const [size, viewport] of [['laptop', LAPTOP], ['phone', PHONE]] as const) {
      for (const scheme of ['light', 'dark'] as const) {
        if (size === 'phone' && scheme === 'dark') continue;
        const w = await openPage(browser, viewport, scheme);
        await login(w.page, 'alice');
        const infoCard = w.page.getByTestId('kernel-info');
        await expect.poll(() => infoCard.textContent()).toContain('Generation');
        const broker = w.page.locator('tr[data-module="broker"]');
        await expect.poll(() => broker.textContent()).toContain('running');
        await expect.poll(() => w.page.getByTestId('who').textContent()).toBe('alice · admin');
        await screenshot(w.page, `overview-${size}-${scheme}`);
        if (size === 'laptop' && scheme === 'light') {
          await broker.getByRole('button', { name: 'Reload' }).click();
          await expect.poll(() => w.page.getByTestId('module-outcome').textContent(), { timeout: 20_000 }).toMatch(
            /broker reloaded: running, generation \d+/,
          );
        }
        expect(w.problems).toEqual([]);
        await w.context.close();
      }
    }
  });

  it('shows broker topics and produces a test record', async () => {
    const w = await openPage(browser);
    await login(w.page, 'alice');
    await w.page.getByRole('link', { name: 'Broker' }).click();
    await expect.poll(() => w.page.url()).toContain('/broker');
    const form = w.page.getByTestId('produce');
    await form.getByLabel('Topic').fill('console-e2e');
    await form.getByLabel('Key').fill('k1');
    await form.getByLabel('Value').fill('hello from the console');
    await form.getByRole('button', { name: 'Produce' }).click();
    await expect.poll(() => form.getByRole('status').textContent()).toMatch(/Written to console-e2e partition \d+ at offset 0/);
    const row = w.page.getByTestId('topics').locator('tr', { hasText: 'console-e2e' });
    await expect.poll(() => row.textContent()).toContain('console-e2e');
    await row.getByRole('button', { name: 'console-e2e' }).click();
    await expect.poll(() => w.page.getByTestId('topic-detail').textContent()).toContain('Partitions');
    await screenshot(w.page, 'broker-laptop');
    // A deep link opens the page directly (SPA fallback); the token lived in
    // memory only, so a fresh load asks for the login first.
    await w.page.goto(daemon.base + '/broker');
    await w.page.getByLabel('User').fill('alice');
    await w.page.getByLabel('Password').fill(USERS.alice.password);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => w.page.getByRole('heading', { name: 'Broker' }).isVisible()).toBe(true);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('gives a viewer no controls, and the API refuses a viewer anyway', async () => {
    const w = await openPage(browser);
    // Keyboard only: Tab between the fields, Enter submits.
    await w.page.goto(daemon.base + '/');
    await w.page.getByLabel('User').focus();
    await w.page.keyboard.type('victor');
    await w.page.keyboard.press('Tab');
    await w.page.keyboard.type(USERS.victor.password);
    await w.page.keyboard.press('Enter');
    await expect.poll(() => w.page.getByTestId('who').textContent()).toBe('victor · viewer');
    await expect.poll(() => w.page.locator('tr[data-module="broker"]').textContent()).toContain('running');
    expect(await w.page.getByRole('button', { name: 'Reload' }).count()).toBe(0);
    expect(await w.page.getByRole('button', { name: 'Unload' }).count()).toBe(0);
    expect(await w.page.getByLabel('Load module (name or path)').count()).toBe(0);
    await w.page.getByRole('link', { name: 'Broker' }).focus();
    await w.page.keyboard.press('Enter');
    await expect.poll(() => w.page.getByRole('heading', { name: 'Broker' }).isVisible()).toBe(true);
    expect(await w.page.getByTestId('produce').count()).toBe(0);
    await screenshot(w.page, 'viewer-broker');
    const token = await daemon.token('victor');
    const unload = await daemon.rpc(KERNEL, 'UnloadModule', { name: 'broker' }, token);
    expect(unload.status).toBe(403);
    const produce = await daemon.rpc('telekern.broker.v1.Broker', 'Produce', { topic: 't', value: 'v' }, token);
    expect(produce.status).toBe(403);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });

  it('signs out back to the login page and hides a page whose module is unloaded', async () => {
    const w = await openPage(browser);
    await login(w.page, 'alice');
    await expect.poll(() => w.page.getByRole('link', { name: 'Broker' }).count()).toBe(1);
    const broker = w.page.locator('tr[data-module="broker"]');
    await broker.getByRole('button', { name: 'Unload' }).click();
    await expect.poll(() => w.page.getByTestId('module-outcome').textContent(), { timeout: 20_000 }).toContain('broker unloaded');
    await expect.poll(() => w.page.getByRole('link', { name: 'Broker' }).count()).toBe(0);
    const form = w.page.getByLabel('Load module (name or path)');
    await form.fill('broker');
    await w.page.getByRole('button', { name: 'Load', exact: true }).click();
    await expect.poll(() => w.page.getByTestId('module-outcome').textContent(), { timeout: 20_000 }).toContain('broker loaded: running');
    await expect.poll(() => w.page.getByRole('link', { name: 'Broker' }).count()).toBe(1);
    await w.page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => w.page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);
    expect(w.problems).toEqual([]);
    await w.context.close();
  });
});
