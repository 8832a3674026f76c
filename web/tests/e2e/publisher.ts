// A synthetic monitor agent: MetricSample JSON records produced to the
// monitor's topic through the gateway, for a set of nodes, every `everyMs`.
import { Daemon } from './daemon';

export class Publisher {
  cpu: Record<string, number> = {};
  published = 0;
  private timer: NodeJS.Timeout | null = null;
  private tick = 0;

  constructor(
    private readonly daemon: Daemon,
    private readonly token: string | undefined,
    readonly nodes: string[],
    private readonly everyMs = 250,
    private readonly topic = 'metrics',
  ) {
    for (const n of nodes) this.cpu[n] = 20;
  }

  sample(node: string): object {
    const t = this.tick;
    return {
      nodeId: node,
      nodeName: `${node}.example`,
      time: new Date().toISOString(),
      cpuPercent: this.cpu[node] + (t % 5),
      memoryPercent: 40 + (t % 7),
      diskReadMbps: 1 + (t % 3),
      diskWriteMbps: 2 + (t % 4),
      networkRxMbps: 10 + (t % 6),
      networkTxMbps: 5 + (t % 2),
      load1: 0.5,
      // Declared longer than the real period: a loaded test machine's pauses
      // must not make nodes stale (3 intervals without a sample).
      interval: `${Math.max(2, (this.everyMs * 4) / 1000)}s`,
    };
  }

  async publishOnce(): Promise<void> {
    this.tick++;
    for (const node of this.nodes) {
      const r = await this.daemon.rpc(
        'telekern.broker.v1.Broker',
        'Produce',
        { topic: this.topic, key: node, value: JSON.stringify(this.sample(node)) },
        this.token,
      );
      if (r.status !== 200) throw new Error(`produce: ${r.status} ${JSON.stringify(r.json)}`);
      this.published++;
    }
  }

  start(): void {
    const loop = async () => {
      try {
        await this.publishOnce();
      } catch (e) {
        console.error(String(e));
      }
      if (this.timer) this.timer = setTimeout(loop, this.everyMs);
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
