/**
 * A Server-Sent Events parser (the WHATWG event-stream format), fed text as it arrives.
 * Used with fetch() so the credential goes in a header: EventSource cannot set one, and the
 * credential must never be put in a URL.
 */

export interface SseMessage {
  id: string | null
  event: string
  data: string
}

export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private id: string | null = null
  /** The last `id:` seen: where to resume (`Last-Event-ID`). */
  lastEventId: string | null = null
  /** `retry:` in ms, when the server sent one. */
  retryMs: number | null = null

  /** Feed a chunk; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk
    const out: SseMessage[] = []
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer)
      if (!match) break
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break
      const line = this.buffer.slice(0, match.index)
      this.buffer = this.buffer.slice(match.index + match[0].length)
      const message = this.line(line)
      if (message) out.push(message)
    }
    return out
  }

  private line(line: string): SseMessage | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = ''
        return null
      }
      const message = { id: this.id, event: this.event || 'message', data: this.data.join('\n') }
      this.data = []
      this.event = ''
      return message
    }
    if (line.startsWith(':')) return null
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        break
      case 'event':
        this.event = value
        break
      case 'id':
        if (!value.includes('\0')) {
          this.id = value
          this.lastEventId = value
        }
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value)
        break
      default:
        break
    }
    return null
  }
}
