/** Turning the analytics routes' buckets into chart series. */

import type { StepBucket } from '../api/types'

export interface Grouped {
  times: number[]
  keys: string[]
  /** values[key][i] for times[i]; null where the group had no steps in that bucket. */
  values: Record<string, (number | null)[]>
}

/** Step buckets (one row per bucket and group) as one aligned series per group. */
export function groupSteps(buckets: readonly StepBucket[], pick: (b: StepBucket) => number | null, top = 5): Grouped {
  const times = [...new Set(buckets.map((b) => Date.parse(b.bucket) / 1000))].sort((a, b) => a - b)
  const index = new Map(times.map((t, i) => [t, i]))
  const volume = new Map<string, number>()
  for (const b of buckets) volume.set(b.key ?? '(none)', (volume.get(b.key ?? '(none)') ?? 0) + b.steps)
  const keys = [...volume.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top).map(([k]) => k)
  const values: Record<string, (number | null)[]> = Object.fromEntries(keys.map((k) => [k, times.map(() => null)]))
  for (const b of buckets) {
    const series = values[b.key ?? '(none)']
    const i = index.get(Date.parse(b.bucket) / 1000)
    if (series && i !== undefined) series[i] = pick(b)
  }
  return { times, keys, values }
}

export const PALETTE = ['#4338ca', '#b91c1c', '#047857', '#b45309', '#7e22ce', '#0e7490']
