import { describe, expect, it } from 'vitest'
import { PageTrail, parseRunFilters, runFiltersToParams, runFiltersToQuery } from './filters'

const WF = '0b8f3a52-6d1e-4c3b-9a77-1f2e3d4c5b6a'

describe('run filters', () => {
  it('round-trip through the page URL', () => {
    const params = new URLSearchParams({ status: 'failed', workflow: WF, after: '2026-01-01T00:00:00.000Z' })
    const filters = parseRunFilters(params)
    expect(filters).toEqual({ status: 'failed', workflowId: WF, startedAfter: '2026-01-01T00:00:00.000Z', startedBefore: null })
    expect(parseRunFilters(runFiltersToParams(filters))).toEqual(filters)
  })

  it('drop what the API would refuse instead of sending it', () => {
    const filters = parseRunFilters(new URLSearchParams({ status: 'exploded', workflow: "x' OR 1=1", before: 'yesterday' }))
    expect(runFiltersToQuery(filters)).toEqual({})
  })

  it('become the API query names', () => {
    expect(runFiltersToQuery(parseRunFilters(new URLSearchParams({ status: 'running', workflow: WF.toUpperCase() })))).toEqual({
      status: 'running',
      workflow_id: WF,
    })
  })
})

describe('PageTrail', () => {
  it('walks cursor pages forward and back', () => {
    let trail = new PageTrail()
    expect([trail.page, trail.current, trail.hasPrevious]).toEqual([1, null, false])
    trail = trail.next('c1').next('c2')
    expect([trail.page, trail.current]).toEqual([3, 'c2'])
    trail = trail.previous()
    expect([trail.page, trail.current, trail.hasPrevious]).toEqual([2, 'c1', true])
    expect(trail.previous().previous().current).toBeNull()
  })
})
