import { describe, expect, it } from 'vitest';
import { SseParser } from '../../src/sse';

describe('SseParser', () => {
  it('parses data events split across chunks', () => {
    const p = new SseParser();
    expect(p.push('data: {"a"')).toEqual([]);
    expect(p.push(':1}\n')).toEqual([]);
    expect(p.push('\ndata: {"a":2}\n\n')).toEqual([
      { event: 'message', data: '{"a":1}' },
      { event: 'message', data: '{"a":2}' },
    ]);
  });
  it('names end and error events and joins multi-line data', () => {
    const p = new SseParser();
    const events = p.push('event: end\ndata:\n\nevent: error\ndata: {"message":"x"}\r\n\r\ndata: a\ndata: b\n\n');
    expect(events).toEqual([
      { event: 'end', data: '' },
      { event: 'error', data: '{"message":"x"}' },
      { event: 'message', data: 'a\nb' },
    ]);
  });
  it('skips comments and keep-alives', () => {
    const p = new SseParser();
    expect(p.push(': ping\n\n')).toEqual([]);
  });
});
