// First load of the console on loopback with a cold cache (a fresh browser
// context each round): bytes transferred (JavaScript as sent, compressed)
// and time from navigation to the first live chart with data, on /monitor
// with two synthetic nodes. Peer in the same run and browser: the kernel's
// own /api/docs page (one inline HTML document) until DOMContentLoaded.
// Targets (issue 18): < 500 KB compressed JavaScript, < 1 s to the first chart.
import { afterAll, beforeAll, it } from 'vitest';
import { Browser } from 'playwright-core';
import { Daemon } from '../e2e/daemon';
import { launch, openPage } from '../e2e/browser';
import { Publisher } from '../e2e/publisher';

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
let daemon: Daemon;
let browser: Browser;
let publisher: Publisher;

beforeAll(async () => {
  daemon = new Daemon({ auth: false, modules: ['broker', 'monitor'] });
  await daemon.start();
  await daemon.rpc('telekern.broker.v1.Broker', 'CreateTopic', { topic: 'metrics', partitions: 1 });
  publisher = new Publisher(daemon, undefined, ['bench-a', 'bench-b'], 500);
  publisher.start();
  await new Promise((r) => setTimeout(r, 3000));
  browser = await launch();
});

afterAll(async () => {
  publisher?.stop();
  await browser?.close();
  await daemon?.stop();
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;

it('console load budget', async () => {
  const chart: number[] = [];
  const docs: number[] = [];
  const jsBytes: number[] = [];
  const allBytes: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Rotate which page loads first.
    const order = round % 2 === 0 ? ['console', 'docs'] : ['docs', 'console'];
    for (const which of order) {
      const w = await openPage(browser);
      if (which === 'docs') {
        await w.page.goto(daemon.base + '/api/docs', { waitUntil: 'domcontentloaded' });
        docs.push(await w.page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).domContentLoadedEventEnd));
      } else {
        const sizes: Promise<{ type: string; bytes: number }>[] = [];
        w.page.on('requestfinished', (req) =>
          sizes.push(
            req
              .sizes()
              .then((s) => ({ type: req.resourceType(), bytes: s.responseBodySize + s.responseHeadersSize }))
              .catch(() => ({ type: req.resourceType(), bytes: 0 })),
          ),
        );
        await w.page.goto(daemon.base + '/monitor');
        const handle = await w.page.waitForFunction(
          () => {
            const f = document.querySelector('figure.chart');
            return f && Number(f.getAttribute('data-points')) > 0 ? performance.now() : false;
          },
          undefined,
          { timeout: 30_000, polling: 'raf' },
        );
        chart.push(Number(await handle.jsonValue()));
        if (round === 0 && process.env.BENCH_WATERFALL) {
          const entries = await w.page.evaluate(() =>
            performance.getEntriesByType('resource').map((e) => {
              const r = e as PerformanceResourceTiming;
              return `${r.startTime.toFixed(0)}-${r.responseEnd.toFixed(0)} ms ${r.name.replace(location.origin, '')}`;
            }),
          );
          console.log(`first round, resources (start-end):\n  ${entries.join('\n  ')}`);
        }
        const done = await Promise.all(sizes);
        jsBytes.push(done.filter((s) => s.type === 'script').reduce((a, s) => a + s.bytes, 0));
        allBytes.push(done.reduce((a, s) => a + s.bytes, 0));
      }
      if (which === 'console' && w.problems.length) throw new Error(`console problems: ${w.problems.join('; ')}`);
      await w.context.close();
    }
  }
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`console load budget, ${rounds} rounds (cold cache each), median (min-max):`);
  console.log(`  JavaScript transferred: ${kb(median(jsBytes))} (target < 500 KB: ${median(jsBytes) < 500 * 1024 ? 'met' : 'NOT met'}, ${(median(jsBytes) / (500 * 1024)).toFixed(2)} of it)`);
  console.log(`  everything transferred until the first chart: ${kb(median(allBytes))}`);
  console.log(`  time to first live chart: ${median(chart).toFixed(0)} ms (${spread(chart)}) (target < 1000 ms: ${median(chart) < 1000 ? 'met' : 'NOT met'})`);
  console.log(`  peer /api/docs DOMContentLoaded: ${median(docs).toFixed(0)} ms (${spread(docs)}); first chart / peer ${(median(chart) / median(docs)).toFixed(1)}x`);
});
