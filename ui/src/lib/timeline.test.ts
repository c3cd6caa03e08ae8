import { describe, expect, it } from 'vitest'
import type { StreamEvent, TimelineEvent } from '../api/types'
import { areaOf, describe as describeItem, fromModel, fromStream, mergeTimeline } from './timeline'

const RUN = 'run-1'

function model(id: string, type: string, version: number, at: string, extra: Partial<TimelineEvent> = {}): TimelineEvent {
  return {
    event_id: id,
    event_type: type,
    area: 'executions',
    aggregate_id: RUN,
    aggregate_version: version,
    occurred_at: at,
    step_id: null,
    summary: { payload: { note: `model ${id}` } },
    ...extra,
  }
}

function live(id: string, type: string, version: number, at: string, payload: Record<string, unknown> = {}): StreamEvent {
  return {
    event_id: id,
    event_type: type,
    aggregate_id: RUN,
    aggregate_version: version,
    execution_id: RUN,
    occurred_at: at,
    payload,
    cursor: `${version}-0`,
  }
}

describe('mergeTimeline', () => {
  it('shows an event seen both ways once, the read model copy winning', () => {
    const merged = mergeTimeline(
      [fromModel(model('a', 'ExecutionStarted', 1, '2026-01-01T00:00:00Z'))],
      [fromStream(live('a', 'ExecutionStarted', 1, '2026-01-01T00:00:00Z')), fromStream(live('b', 'StepScheduled', 2, '2026-01-01T00:00:01Z'))],
    )
    expect(merged.map((i) => i.id)).toEqual(['a', 'b'])
    expect(merged[0]?.live).toBe(false)
    expect(merged[0]?.data).toEqual({ note: 'model a' })
    expect(merged[1]?.live).toBe(true)
  })

  it('drops repeated live events (a reconnect replays from Last-Event-ID)', () => {
    const event = fromStream(live('x', 'StepStarted', 3, '2026-01-01T00:00:02Z'))
    expect(mergeTimeline([], [event, event, { ...event }])).toHaveLength(1)
  })

  it('orders by time, then by version within one aggregate', () => {
    const same = '2026-01-01T00:00:05Z'
    const merged = mergeTimeline(
      [fromModel(model('late', 'StepCompleted', 9, '2026-01-01T00:00:09Z'))],
      [fromStream(live('v5', 'StepStarted', 5, same)), fromStream(live('v4', 'StepScheduled', 4, same))],
    )
    expect(merged.map((i) => i.id)).toEqual(['v4', 'v5', 'late'])
  })

  it('takes the step and the area from a live payload', () => {
    const item = fromStream(live('f', 'FailureDetected', 1, '2026-01-01T00:00:00Z', { step_id: 'draft', kind: 'hallucination', message: 'invented' }))
    expect(item.stepId).toBe('draft')
    expect(item.area).toBe('failures')
    expect(describeItem(item)).toBe('failure (hallucination): invented')
  })
})

describe('areaOf', () => {
  it('maps event types to the read model areas', () => {
    expect(areaOf('RecoveryPlanned')).toBe('failures')
    expect(areaOf('VoteCast')).toBe('consensus')
    expect(areaOf('PolicyViolated')).toBe('policies')
    expect(areaOf('CheckpointCreated')).toBe('executions')
  })
})

describe('describe: approvals', () => {
  it('labels an escalation with its deciders, default and new deadline', () => {
    const item = fromModel(
      model('e', 'HumanApprovalEscalated', 7, '2026-01-01T00:01:00Z', {
        step_id: 'publish',
        summary: {
          payload: {
            step_id: 'publish',
            approvers: ['carol'],
            approver_role: 'admin',
            default_action: 'reject',
            deadline: '2026-01-01T00:06:00Z',
            previous_deadline: '2026-01-01T00:01:00Z',
          },
        },
      }),
    )
    const text = describeItem(item)
    expect(text).toMatch(/^approval for publish escalated to carol \(role admin\) — reject at /)
    expect(text).not.toBe('HumanApprovalEscalated')
  })

  it('names a role alone, or anyone', () => {
    const byRole = fromStream(live('r', 'HumanApprovalEscalated', 4, '2026-01-01T00:00:00Z', { step_id: 's', approver_role: 'operator', approvers: [] }))
    expect(describeItem(byRole)).toBe('approval for s escalated to any operator')
    const anyone = fromStream(live('a', 'HumanApprovalEscalated', 4, '2026-01-01T00:00:00Z', { step_id: 's' }))
    expect(describeItem(anyone)).toBe('approval for s escalated to anyone')
  })
})

describe('describe: checkpoint retention', () => {
  it('counts the pruned checkpoints and names the rule', () => {
    const item = fromStream(
      live('p', 'CheckpointsPruned', 9, '2026-01-01T00:00:00Z', {
        checkpoints: [{ checkpoint_id: 'a' }, { checkpoint_id: 'b' }],
        keep_last: 3,
        max_age_s: 604800,
      }),
    )
    expect(describeItem(item)).toBe('2 checkpoints pruned by retention (keep last 3, max age 604800 s)')
    const one = fromStream(live('q', 'CheckpointsPruned', 9, '2026-01-01T00:00:00Z', { checkpoints: [{}], keep_last: 1 }))
    expect(describeItem(one)).toBe('1 checkpoint pruned by retention (keep last 1)')
  })
})
