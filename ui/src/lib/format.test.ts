import { describe, expect, it } from 'vitest'
import { formatClock, formatCount, formatTime } from './format'

describe('formatters', () => {
  const instants = ['2026-12-06T02:05:09.007Z', '2026-01-31T23:59:59.999Z', '2026-07-01T12:00:00.000Z']

  it('write what the per-call toLocale* forms wrote, from shared formatters', () => {
    for (const iso of instants) {
      const date = new Date(iso)
      const ms = String(date.getMilliseconds()).padStart(3, '0')
      expect(formatClock(iso)).toBe(`${date.toLocaleTimeString(undefined, { hour12: false })}.${ms}`)
      expect(formatTime(iso)).toBe(
        date.toLocaleString(undefined, {
          year: 'numeric',
          month: 'short',
          day: '2-digit',
          hour: '2-digit',
          minute: '2-digit',
          second: '2-digit',
        }),
      )
    }
    expect(formatCount(1234567)).toBe((1234567).toLocaleString('en-US'))
    expect(formatCount(null)).toBe('—')
    expect(formatTime('not a time')).toBe('not a time')
  })
})
