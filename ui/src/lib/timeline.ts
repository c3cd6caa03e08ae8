/**
 * A run's timeline: the read model's page of events merged with the live ones from its
 * Server-Sent Events stream. The same event can arrive both ways (and twice live, after a
 * reconnect): it is shown once, in the order the run saw it.
 */

import type { JsonObject, StreamEvent, TimelineEvent } from '../api/types'
import { formatTime } from './format'

export interface TimelineItem {
  id: string
  type: string
  area: string
  aggregateId: string
  version: number
  at: string
  stepId: string | null
  data: JsonObject
  /** Seen on the live stream before (or without) the read model. */
  live: boolean
}

const AREAS: [RegExp, string][] = [
  [/^(FailureDetected|RecoveryPlanned)$/, 'failures'],
  [/^(ConsensusRoundOpened|ConsensusReached|ConsensusFailed|VoteCast|VoteRejected)$/, 'consensus'],
  [/^Policy/, 'policies'],
]

/** The timeline area of an event type (the read model's `area`). */
export function areaOf(eventType: string): string {
  for (const [pattern, area] of AREAS) if (pattern.test(eventType)) return area
  return 'executions'
}

function asObject(value: unknown): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as JsonObject)
    : {}
}

export function fromModel(event: TimelineEvent): TimelineItem {
  const summary = asObject(event.summary)
  const data = 'payload' in summary ? asObject(summary.payload) : summary
  return {
    id: event.event_id,
    type: event.event_type,
    area: event.area,
    aggregateId: event.aggregate_id,
    version: event.aggregate_version,
    at: event.occurred_at,
    stepId: event.step_id,
    data,
    live: false,
  }
}

export function fromStream(event: StreamEvent): TimelineItem {
  const payload = asObject(event.payload)
  const step = payload.step_id
  return {
    id: event.event_id,
    type: event.event_type,
    area: areaOf(event.event_type),
    aggregateId: event.aggregate_id,
    version: event.aggregate_version,
    at: event.occurred_at,
    stepId: typeof step === 'string' ? step : null,
    data: payload,
    live: true,
  }
}

function compare(a: TimelineItem, b: TimelineItem): number {
  const ta = Date.parse(a.at)
  const tb = Date.parse(b.at)
  if (ta !== tb) return ta - tb
  // Same instant: one aggregate's events keep their version order.
  if (a.aggregateId === b.aggregateId) return a.version - b.version
  return a.aggregateId < b.aggregateId ? -1 : 1
}

/** Read-model events and live ones, each once (the read model's copy wins), in order. */
export function mergeTimeline(model: readonly TimelineItem[], live: readonly TimelineItem[]): TimelineItem[] {
  const byId = new Map<string, TimelineItem>()
  for (const item of live) if (!byId.has(item.id)) byId.set(item.id, item)
  for (const item of model) byId.set(item.id, item)
  return [...byId.values()].sort(compare)
}

/** A one-line description of an event for the timeline. */
export function describe(item: TimelineItem): string {
  const d = item.data
  const text = (key: string): string | null => {
    const value = d[key]
    return typeof value === 'string' && value ? value : typeof value === 'number' ? String(value) : null
  }
  const names = (key: string): string[] => {
    const value = d[key]
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v !== '') : []
  }
  switch (item.type) {
    case 'ExecutionStarted':
      return `run started (workflow v${text('workflow_version') ?? '?'})`
    case 'StepScheduled':
      return `step ${item.stepId ?? '?'} scheduled${text('agent') ? ` on ${text('agent')}` : ''}`
    case 'StepStarted':
      return `step ${item.stepId ?? '?'} started`
    case 'StepCompleted':
      return `step ${item.stepId ?? '?'} completed`
    case 'StepFailed':
      return `step ${item.stepId ?? '?'} failed: ${text('error') ?? text('error_type') ?? ''}`
    case 'CheckpointCreated':
      return `checkpoint ${text('position') ?? ''} ${item.stepId ?? ''} (${text('storage') ?? ''})`
    case 'CheckpointsPruned': {
      const pruned = Array.isArray(d['checkpoints']) ? d['checkpoints'].length : 0
      const rules = [
        text('keep_last') ? `keep last ${text('keep_last')}` : null,
        text('max_age_s') ? `max age ${text('max_age_s')} s` : null,
      ].filter((rule): rule is string => rule !== null)
      return `${pruned} checkpoint${pruned === 1 ? '' : 's'} pruned by retention${rules.length ? ` (${rules.join(', ')})` : ''}`
    }
    case 'ExecutionRolledBack':
      return `rolled back to checkpoint ${text('checkpoint_id')?.slice(0, 8) ?? '?'}${text('reason') ? `: ${text('reason')}` : ''}`
    case 'HumanApprovalRequested':
      return `approval requested for ${item.stepId ?? '?'}${text('prompt') ? `: ${text('prompt')}` : ''}`
    case 'HumanApprovalEscalated':
      return `approval for ${item.stepId ?? '?'} escalated to ${deciders(names('approvers'), text('approver_role'))}${
        text('deadline') ? ` — ${text('default_action') ?? 'default'} at ${formatTime(text('deadline'))}` : ''
      }`
    case 'HumanApprovalGranted':
      return `approval granted by ${text('decided_by') ?? '?'}`
    case 'HumanApprovalRejected':
      return `approval rejected by ${text('decided_by') ?? '?'}`
    case 'FailureDetected':
      return `failure (${text('kind') ?? '?'}): ${text('message') ?? ''}`
    case 'RecoveryPlanned':
      return `recovery: ${text('plan') ?? '?'}${text('reason') ? ` — ${text('reason')}` : ''}`
    case 'ConsensusRoundOpened':
      return `consensus round opened (${text('rule') ?? ''})`
    case 'VoteCast':
      return `vote by ${text('participant') ?? '?'}: ${text('choice') ?? ''}`
    case 'VoteRejected':
      return `vote rejected (${text('reason') ?? ''})`
    case 'ConsensusReached':
      return `consensus reached: ${text('decision') ?? ''}`
    case 'ConsensusFailed':
      return `consensus failed: ${text('reason') ?? ''}`
    case 'PolicyViolated':
      return `policy ${text('policy_name') ?? text('policy_id') ?? ''} violated (${text('mode') ?? ''})`
    case 'ExecutionCompleted':
      return 'run completed'
    case 'ExecutionFailed':
      return `run failed: ${text('error') ?? ''}`
    case 'ExecutionHalted':
      return `run halted: ${text('reason') ?? ''}`
    case 'ExecutionCancelled':
      return `run cancelled${text('requested_by') ? ` by ${text('requested_by')}` : ''}`
    default:
      return item.type
  }
}

/** Who may decide an approval: named approvers, a least role, or both; anyone when neither. */
export function deciders(approvers: readonly string[], role: string | null | undefined): string {
  const who = approvers.join(', ')
  if (who && role) return `${who} (role ${role})`
  if (who) return who
  if (role) return `any ${role}`
  return 'anyone'
}
