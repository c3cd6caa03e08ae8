/**
 * At most one call every `intervalMs` (the first at once, the last of a burst at the end of
 * its interval), and one more `settleMs` after the burst: a refresh that follows a stream of
 * events without asking more than once an interval, and once more after the read model that
 * answers it (another projection than the one that sent the events) has caught up.
 */
export interface Throttled {
  (): void
  cancel: () => void
}

export function throttle(fn: () => void, intervalMs: number, settleMs = 0): Throttled {
  let last = -Infinity
  let trailing: ReturnType<typeof setTimeout> | null = null
  let settle: ReturnType<typeof setTimeout> | null = null

  function fire() {
    last = Date.now()
    fn()
  }

  const throttled = (() => {
    if (settleMs > 0) {
      if (settle !== null) clearTimeout(settle)
      settle = setTimeout(() => {
        settle = null
        fire()
      }, settleMs)
    }
    if (trailing !== null) return
    const wait = last + intervalMs - Date.now()
    if (wait <= 0) {
      fire()
      return
    }
    trailing = setTimeout(() => {
      trailing = null
      fire()
    }, wait)
  }) as Throttled
  throttled.cancel = () => {
    if (trailing !== null) clearTimeout(trailing)
    if (settle !== null) clearTimeout(settle)
    trailing = settle = null
  }
  return throttled
}
