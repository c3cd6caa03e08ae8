import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { throttle } from './throttle'

describe('throttle', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('calls at once, then once per interval during a burst, then once after it settles', () => {
    const fn = vi.fn()
    const t = throttle(fn, 1_000, 1_500)
    t()
    expect(fn).toHaveBeenCalledTimes(1)
    for (let i = 0; i < 30; i++) {
      vi.advanceTimersByTime(100)
      t()
    }
    // 3 s of calls every 100 ms: the first, then one at the end of each 1 s interval.
    expect(fn).toHaveBeenCalledTimes(4)
    vi.advanceTimersByTime(1_000)
    expect(fn).toHaveBeenCalledTimes(5) // the trailing call of the last interval
    vi.advanceTimersByTime(500)
    expect(fn).toHaveBeenCalledTimes(6) // 1.5 s after the last event: the settling call
    vi.advanceTimersByTime(10_000)
    expect(fn).toHaveBeenCalledTimes(6)
  })

  it('cancel drops the pending calls', () => {
    const fn = vi.fn()
    const t = throttle(fn, 1_000, 1_500)
    t()
    t()
    t.cancel()
    vi.advanceTimersByTime(5_000)
    expect(fn).toHaveBeenCalledTimes(1)
  })
})
