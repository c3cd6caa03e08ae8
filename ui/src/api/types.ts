/** The gateway's answers the UI reads (see /openapi.json; only the fields used here). */

import type { Role } from '../auth/roles'

export type JsonObject = { [key: string]: unknown }

export interface WhoAmI {
  subject: string
  tenant_id: string
  roles: Role[]
  role: Role | null
  method: string
  key_id: string | null
}

export const RUN_STATES = [
  'pending',
  'running',
  'waiting_for_approval',
  'completed',
  'failed',
  'halted',
  'cancelled',
] as const
export type RunState = (typeof RUN_STATES)[number]
export const ACTIVE_STATES: readonly string[] = ['pending', 'running', 'waiting_for_approval']

export interface ExecutionSummary {
  execution_id: string
  workflow_id: string | null
  workflow_version: number | null
  status: string
  trigger: string | null
  started_by: string | null
  labels: Record<string, string>
  agents: string[]
  current_step_id: string | null
  steps_completed: number
  steps_failed: number
  total_tokens: number
  total_cost_usd: number
  duration_ms: number | null
  error_type: string | null
  error_message: string | null
  status_reason: string | null
  started_at: string
  ended_at: string | null
  updated_at: string
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface StepView {
  step_id: string
  attempt: number
  status: string
  agent: string | null
  worker_id: string | null
  model: string | null
  tokens_in: number
  tokens_out: number
  cost_usd: number
  duration_ms: number | null
  error_type: string | null
  error_message: string | null
  scheduled_at: string | null
  started_at: string | null
  ended_at: string | null
}

export interface TimelineEvent {
  event_id: string
  event_type: string
  area: string
  aggregate_id: string
  aggregate_version: number
  occurred_at: string
  step_id: string | null
  summary: JsonObject
}

export interface Timeline {
  execution: ExecutionSummary | null
  steps: StepView[]
  events: TimelineEvent[]
  next_cursor: string | null
}

/** One message of a run's Server-Sent Events stream (`data:`). */
export interface StreamEvent {
  event_id: string
  event_type: string
  aggregate_id: string
  aggregate_version: number
  execution_id: string | null
  occurred_at: string
  payload: JsonObject
  cursor: string
}

export interface Step {
  step_id: string
  status: string
  agent: string | null
  attempts: number
  output: JsonObject | null
  error: string | null
}

export interface Checkpoint {
  checkpoint_id: string
  step_id: string
  position: string
  checksum: string
  size: number
  storage: string
  object_key: string | null
  sequence: number
  inline_state?: string | null
}

export interface Approval {
  step_id: string
  status: string
  deadline: string
  default_action: string
  prompt: string | null
  decided_by: string | null
  comment: string | null
  by_default: boolean
  /** Who may decide (any of them); empty: anyone with `approver_role`. */
  approvers?: string[]
  approver_role?: string | null
  /** Who decides after the deadline, for default_action `escalate`. */
  escalation?: JsonObject | null
  /** When the deadline passed the approval on to its escalation's deciders. */
  escalated_at?: string | null
}

/** A run as the write side knows it (`GET /executions/{id}`). */
export interface Execution {
  execution_id: string
  workflow_id: string
  workflow_version: number
  input: JsonObject
  state: string
  steps: Step[]
  checkpoints: Checkpoint[]
  approvals: Approval[]
  rollbacks: number
  outcome: JsonObject
  started_at: string
  modified_at: string
  version: number
}

export interface Accepted {
  execution_id: string
  version: number
  events: string[]
}

export interface WorkflowStepDef {
  id: string
  agent?: string | null
  needs?: string[] | null
  [key: string]: unknown
}

export interface Workflow {
  workflow_id: string
  name: string
  definition_version: number
  latest_version: number
  definition: JsonObject & { steps?: WorkflowStepDef[] }
  registered_at: string
  modified_at: string
  version: number
}

export interface ConsensusRound {
  round_id: string
  participants: string[]
  rule: string
  weights: Record<string, number> | null
  threshold: number | null
  k: number | null
  deadline: string
  subject: string | null
  execution_id: string | null
  votes: Record<string, unknown>
  status: string
  decision: string | null
  failure_reason: string | null
  tally: Record<string, unknown>
  version: number
}

export interface Failure {
  failure_id: string
  execution_id: string | null
  step_id: string | null
  attempt: number | null
  kind: string | null
  message: string | null
  signature: string | null
  agent: string | null
  model: string | null
  detected_by: string | null
  details: JsonObject
  detected_at: string | null
  plan_id: string | null
  plan: string | null
  plan_reason: string | null
  planned_at: string | null
  similar_failure_count: number | null
}

export interface FailureGroup {
  signature: string
  count: number
  executions: number
  first_seen: string | null
  last_seen: string | null
  kinds: string[]
  sample: JsonObject | null
}

export interface AuditRecord {
  event_id: string
  occurred_at: string
  actor: string
  actor_kind: string
  roles: string[]
  command: string
  target: string | null
  result: string
  reason: string | null
  status_code: number | null
  request_id: string | null
  idempotency_key: string | null
  source_ip: string | null
}

export interface RunBucket {
  bucket: string
  runs: number
  completed: number
  failed: number
  stopped: number
  active: number
  failure_rate: number | null
  tokens: number
  cost_usd: number
}

export interface RunStats {
  start: string
  end: string
  bucket: string
  buckets: RunBucket[]
}

export interface StepBucket {
  bucket: string
  key: string | null
  steps: number
  failed: number
  p50_ms: number | null
  p95_ms: number | null
  tokens_in: number
  tokens_out: number
  cost_usd: number
}

export interface StepStats {
  start: string
  end: string
  bucket: string
  group_by: string | null
  buckets: StepBucket[]
}

export interface ChainBreak {
  where: string
  kind: string
  aggregate_id: string
  aggregate_version: number | null
  expected: string
  found: string
  detail: string
  topic: string | null
  partition: number | null
  offset: number | null
}

export interface IntegrityReport {
  execution_id: string | null
  ok: boolean
  checked_store: boolean
  checked_kafka: boolean
  aggregates: number
  store_events: number
  kafka_events: number
  kafka_duplicates: number
  unrelayed: number
  dead_lettered: number
  breaks: ChainBreak[]
}

export interface Policy {
  policy_id: string
  name: string
  policy_version: number
  latest_version: number
  module: string
  module_sha256: string
  package: string
  mode: string
  description: string | null
  created_at: string
  modified_at: string
  version: number
}
