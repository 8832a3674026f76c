import { describe, expect, it } from 'vitest';
import { latestByMetric } from '../../src/pages/collector';

describe('latestByMetric', () => {
  it('keeps the newest point of each metric', () => {
    const got = latestByMetric([
      { time: '2026-01-01T00:00:02Z', metricName: 'util', value: 2 },
      { time: '2026-01-01T00:00:01Z', metricName: 'util', value: 1 },
      { time: '2026-01-01T00:00:01Z', metricName: 'temp', value: 60 },
    ]);
    expect(got.util.value).toBe(2);
    expect(got.temp.value).toBe(60);
    expect(Object.keys(got).sort()).toEqual(['temp', 'util']);
  });
});
