import { describe, expect, it } from 'vitest'
import { SseParser } from './sse'

describe('SseParser', () => {
  it('parses events split across chunks anywhere, with ids, types and comments', () => {
    const parser = new SseParser()
    const text = 'retry: 2000\n\n: heartbeat\n\nid: 1-0\nevent: StepStarted\ndata: {"a":\ndata: 1}\n\nid: 2-0\r\nevent: StepCompleted\r\ndata: {}\r\n\r\n'
    const messages = []
    for (let i = 0; i < text.length; i += 3) messages.push(...parser.push(text.slice(i, i + 3)))
    expect(messages).toEqual([
      { id: '1-0', event: 'StepStarted', data: '{"a":\n1}' },
      { id: '2-0', event: 'StepCompleted', data: '{}' },
    ])
    expect(parser.lastEventId).toBe('2-0')
    expect(parser.retryMs).toBe(2000)
  })

  it('waits for the blank line before dispatching', () => {
    const parser = new SseParser()
    expect(parser.push('data: x\n')).toEqual([])
    expect(parser.push('\n')).toEqual([{ id: null, event: 'message', data: 'x' }])
  })
})
