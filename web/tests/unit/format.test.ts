import { describe, expect, it } from 'vitest';
import { durationSeconds, enumLabel, humanBytes, humanDuration, parseDurationInput } from '../../src/format';
import { base64Text, parseCsv } from '../../src/csv';
import { LiveSeries } from '../../src/series';
import { matchPath } from '../../src/router';

describe('format', () => {
  it('reads and writes durations', () => {
    expect(durationSeconds('3600s')).toBe(3600);
    expect(durationSeconds('1.5s')).toBe(1.5);
    expect(durationSeconds(undefined)).toBe(0);
    expect(humanDuration(93784)).toBe('1d 2h');
    expect(humanDuration(0.25)).toBe('250ms');
    expect(parseDurationInput('1h30m')).toBe('5400s');
    expect(parseDurationInput('30s')).toBe('30s');
    expect(parseDurationInput('')).toBe('0s');
    expect(parseDurationInput('soon')).toBeNull();
  });
  it('labels enums and sizes', () => {
    expect(enumLabel('NODE_STATUS_STALE', 'NODE_STATUS_')).toBe('stale');
    expect(enumLabel(undefined, 'X_')).toBe('unknown');
    expect(humanBytes('1536')).toBe('1.5 KiB');
    expect(humanBytes(12)).toBe('12 B');
  });
});

describe('csv', () => {
  it('parses quotes, commas and CRLF', () => {
    expect(parseCsv('a,b\r\n"x,1","say ""hi"""\n3,\n')).toEqual([
      ['a', 'b'],
      ['x,1', 'say "hi"'],
      ['3', ''],
    ]);
  });
  it('decodes protobuf bytes', () => {
    expect(base64Text(btoa('time,cpu\n'))).toBe('time,cpu\n');
  });
});

describe('LiveSeries', () => {
  it('keeps rows ordered, replaces equal times and drops old rows', () => {
    const s = new LiveSeries(['cpu'], 10);
    s.add(100, [1]);
    s.add(102, [3]);
    s.add(101, [2]);
    s.add(102, [4]);
    expect(s.data()).toEqual([[100, 101, 102], [1, 2, 4]]);
    s.add(111, [5]);
    expect(s.data()).toEqual([[101, 102, 111], [2, 4, 5]]);
  });
  it('bounds the number of points', () => {
    const s = new LiveSeries(['a', 'b'], 1e9, 3);
    for (let i = 0; i < 5; i++) s.add(i, [i, -i]);
    expect(s.data()).toEqual([[2, 3, 4], [2, 3, 4], [-2, -3, -4]]);
  });
});

describe('router', () => {
  it('matches path parameters', () => {
    expect(matchPath('/monitor/nodes/:id', '/monitor/nodes/web%201')).toEqual({ id: 'web 1' });
    expect(matchPath('/monitor/nodes/:id', '/monitor')).toBeNull();
  });
});
