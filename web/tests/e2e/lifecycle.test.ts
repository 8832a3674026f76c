// Sessions and failures: a daemon without auth opens straight into the
// console; an expired token goes back to the login page; a dead daemon is
// named as such; a raw path that climbs out of the console dir gets nothing.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Browser } from 'playwright-core';
import { Daemon, USERS } from './daemon';
import { launch, openPage, screenshot } from './browser';

let daemon: Daemon | null = null;
let browser: Browser | null = null;

afterEach(async () => {
  await browser?.close();
  browser = null;
  await daemon?.stop();
  daemon = null;
});

function rawGet(address: string, path: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\n\r\n`));
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

describe('sessions and failures', () => {
  it('opens without login when auth is off, then says so when the daemon dies', async () => {
    daemon = new Daemon({ auth: false, modules: ['broker'] });
    await daemon.start();
    for (const path of ['/../../../../etc/passwd', '/assets/../../../etc/passwd', '/..%2f..%2fetc/passwd']) {
      const answer = await rawGet(daemon.http, path);
      expect(answer).not.toContain('root:');
      expect(answer).toMatch(/^HTTP\/1\.1 (400|404)/);
    }
    browser = await launch();
    const w = await openPage(browser);
    await w.page.goto(daemon.base + '/');
    await expect.poll(() => w.page.getByTestId('who').textContent()).toBe('local · admin');
    await expect.poll(() => w.page.getByTestId('kernel-info').textContent()).toContain('off (loopback only)');
    expect(await w.page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    expect(w.problems).toEqual([]);
    await daemon.stop();
    daemon = null;
    await w.page.getByRole('link', { name: 'Broker' }).click();
    await expect.poll(() => w.page.getByRole('alert').first().textContent()).toContain('telekernd does not answer');
    await screenshot(w.page, 'daemon-down');
    // Only the browser's own notes of the refused connection.
    expect(w.problems.filter((p) => !/ERR_CONNECTION_REFUSED/.test(p))).toEqual([]);
    await w.context.close();
  });

  it('goes back to the login page when the token expires', async () => {
    daemon = new Daemon({ auth: true, modules: [], jwtTtl: '2s' });
    await daemon.start();
    browser = await launch();
    const w = await openPage(browser);
    await w.page.goto(daemon.base + '/');
    await w.page.getByLabel('User').fill('olga');
    await w.page.getByLabel('Password').fill(USERS.olga.password);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => w.page.getByTestId('who').textContent()).toBe('olga · operator');
    await expect.poll(() => w.page.locator('.note').textContent(), { timeout: 10_000 }).toContain('session expired');
    expect(await w.page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);
    await screenshot(w.page, 'session-expired');
    expect(w.problems).toEqual([]);
    await w.context.close();
  });
});
