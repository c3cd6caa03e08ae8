import { useQueries, useQuery } from '@tanstack/react-query'
import type { ReactNode } from 'react'
import { Link } from 'react-router'
import { getJson } from '../../api/client'
import type { ConsensusRound, IntegrityReport, Page, StepView } from '../../api/types'
import { formatClock, formatCost, formatCount, formatDuration } from '../../lib/format'
import { describe, type TimelineItem } from '../../lib/timeline'
import { Badge } from '../ui/Badge'
import { Button } from '../ui/Button'
import { Card } from '../ui/Card'
import { ProblemAlert } from '../ui/ProblemAlert'
import { Loading } from '../ui/Spinner'
import { Table, Td } from '../ui/Table'

const text = (value: unknown): string =>
  value === null || value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value)

export function Attempts({ steps }: { steps: StepView[] }) {
  return (
    <Card title="Steps and attempts" id="attempts">
      {steps.length === 0 ? (
        <p className="text-sm text-slate-600">No step has been scheduled yet.</p>
      ) : (
        <Table caption="Every attempt of every step" head={['Step', 'Attempt', 'State', 'Agent', 'Model', 'Tokens in/out', 'Cost', 'Duration', 'Error']}>
          {steps.map((s) => (
            <tr key={`${s.step_id}#${s.attempt}`} data-testid="attempt-row">
              <Td className="font-mono">{s.step_id}</Td>
              <Td>{s.attempt}</Td>
              <Td>
                <Badge>{s.status}</Badge>
              </Td>
              <Td>{s.agent ?? '—'}</Td>
              <Td>{s.model ?? '—'}</Td>
              <Td>
                {formatCount(s.tokens_in)} / {formatCount(s.tokens_out)}
              </Td>
              <Td>{formatCost(s.cost_usd)}</Td>
              <Td>{formatDuration(s.duration_ms)}</Td>
              <Td className="max-w-xs text-red-800">{s.error_message ? `${s.error_type ?? 'error'}: ${s.error_message}` : ''}</Td>
            </tr>
          ))}
        </Table>
      )}
    </Card>
  )
}

export function TimelineList({ items, status }: { items: TimelineItem[]; status: ReactNode }) {
  return (
    <Card title={`Timeline (${items.length} events)`} actions={status} id="timeline">
      {items.length === 0 ? (
        <p className="text-sm text-slate-600">No events yet.</p>
      ) : (
        <ol tabIndex={0} className="max-h-[28rem] overflow-y-auto text-sm" aria-label="Events of this run, oldest first">
          {items.map((item) => (
            <li key={item.id} className="flex gap-3 border-b border-slate-100 py-1" data-testid="timeline-event" data-event-type={item.type} data-event-id={item.id}>
              <time className="shrink-0 font-mono text-xs text-slate-600" dateTime={item.at}>
                {formatClock(item.at)}
              </time>
              <span className="w-20 shrink-0 text-xs text-slate-600">{item.area}</span>
              <span className="min-w-0 flex-1 break-words">{describe(item)}</span>
              {item.live && <span className="text-xs text-blue-800">live</span>}
            </li>
          ))}
        </ol>
      )}
    </Card>
  )
}

/** Failures of this run, each with the recovery decision made about it. */
export function FailuresAndRecovery({ items }: { items: TimelineItem[] }) {
  const plans = new Map<string, TimelineItem>()
  for (const item of items) if (item.type === 'RecoveryPlanned') plans.set(String(item.data.failure_id), item)
  const failures = items.filter((item) => item.type === 'FailureDetected')
  const failedAttempts = items.filter((item) => item.type === 'StepFailed')
  return (
    <Card title="Failures and recovery" id="failures">
      {failures.length === 0 && failedAttempts.length === 0 ? (
        <p className="text-sm text-slate-600">No failures.</p>
      ) : failures.length === 0 ? (
        <ul className="text-sm">
          {failedAttempts.map((item) => (
            <li key={item.id}>{describe(item)}</li>
          ))}
        </ul>
      ) : (
        <Table caption="Failures and the recovery plan chosen for each" head={['When', 'Step', 'Kind', 'Message', 'Recovery', 'Why', 'Decided by']}>
          {failures.map((failure) => {
            const plan = plans.get(String(failure.data.failure_id))
            return (
              <tr key={failure.id} data-testid="failure-row">
                <Td className="font-mono text-xs">{formatClock(failure.at)}</Td>
                <Td className="font-mono">{failure.stepId ?? '—'}</Td>
                <Td>{text(failure.data.kind)}</Td>
                <Td className="max-w-xs">{text(failure.data.message)}</Td>
                <Td>{plan ? <Badge tone="running">{text(plan.data.plan)}</Badge> : <span className="text-slate-600">pending</span>}</Td>
                <Td className="max-w-xs">{plan ? text(plan.data.reason) : ''}</Td>
                <Td>{plan ? text(plan.data.decided_by) : ''}</Td>
              </tr>
            )
          })}
        </Table>
      )}
    </Card>
  )
}

export function Consensus({ items }: { items: TimelineItem[] }) {
  const roundIds = [...new Set(items.filter((i) => i.area === 'consensus').map((i) => i.aggregateId))]
  const rounds = useQueries({
    queries: roundIds.map((id) => ({
      queryKey: ['round', id, items.length],
      queryFn: () => getJson<ConsensusRound>(`/consensus/rounds/${id}`),
    })),
  })
  if (roundIds.length === 0) return null
  return (
    <Card title="Consensus" id="consensus">
      <div className="flex flex-col gap-3">
        {rounds.map((round, index) => {
          if (round.isPending) return <Loading key={index} />
          if (round.isError) return <ProblemAlert key={index} error={round.error} />
          const r = round.data
          return (
            <div key={r.round_id} className="rounded border border-slate-200 p-3 text-sm" data-testid="consensus-round">
              <p className="mb-2 flex flex-wrap items-center gap-2">
                <span className="font-medium">{r.subject ?? 'Round'}</span>
                <span className="text-slate-600">rule {r.rule}</span>
                <Badge>{r.status}</Badge>
                {r.decision && (
                  <span>
                    decision: <strong>{r.decision}</strong>
                  </span>
                )}
                {r.failure_reason && <span className="text-red-800">{r.failure_reason}</span>}
              </p>
              <Table caption="Votes" head={['Participant', 'Choice', 'Weight']}>
                {r.participants.map((p) => {
                  const vote = r.votes[p] as { choice?: unknown; rationale?: unknown } | string | undefined
                  const choice = typeof vote === 'object' && vote !== null ? vote.choice : vote
                  return (
                    <tr key={p}>
                      <Td>{p}</Td>
                      <Td>{choice === undefined ? <span className="text-slate-600">no vote</span> : text(choice)}</Td>
                      <Td>{r.weights?.[p] ?? 1}</Td>
                    </tr>
                  )
                })}
              </Table>
              <p className="mt-1 text-xs text-slate-600">tally: {JSON.stringify(r.tally)}</p>
            </div>
          )
        })}
      </div>
    </Card>
  )
}

export function PolicyEvaluations({ items }: { items: TimelineItem[] }) {
  const policy = items.filter((i) => i.area === 'policies')
  if (policy.length === 0) return null
  return (
    <Card title="Policy evaluations" id="policies">
      <ul className="text-sm">
        {policy.map((item) => (
          <li key={item.id} className="border-b border-slate-100 py-1">
            <span className="font-mono text-xs text-slate-600">{formatClock(item.at)}</span> {describe(item)}
            {typeof item.data.message === 'string' && <span className="text-slate-700"> — {item.data.message}</span>}
          </li>
        ))}
      </ul>
    </Card>
  )
}

interface Span {
  span_id: string
  name: string
  kind: string
  step_id: string | null
  model: string | null
  tokens_in: number
  tokens_out: number
  cost_usd: number
  duration_ms: number
  status: string
  start_time: string
}

export function LlmCalls({ executionId }: { executionId: string }) {
  const spans = useQuery({
    queryKey: ['spans', executionId],
    queryFn: () => getJson<Page<Span>>('/traces/spans', { execution_id: executionId, limit: 200 }),
    refetchInterval: 10_000,
  })
  const calls = (spans.data?.items ?? []).filter((s) => s.model || s.tokens_in || s.tokens_out)
  return (
    <Card title="LLM calls" id="llm-calls">
      {spans.isPending && <Loading />}
      {spans.isError && <ProblemAlert error={spans.error} />}
      {spans.data && calls.length === 0 && <p className="text-sm text-slate-600">No LLM calls recorded for this run.</p>}
      {calls.length > 0 && (
        <Table caption="LLM calls of this run" head={['Started', 'Step', 'Call', 'Model', 'Tokens in/out', 'Cost', 'Duration', 'Status']}>
          {calls.map((s) => (
            <tr key={s.span_id}>
              <Td className="font-mono text-xs">{formatClock(s.start_time)}</Td>
              <Td className="font-mono">{s.step_id ?? '—'}</Td>
              <Td>{s.name}</Td>
              <Td>{s.model ?? '—'}</Td>
              <Td>
                {formatCount(s.tokens_in)} / {formatCount(s.tokens_out)}
              </Td>
              <Td>{formatCost(s.cost_usd)}</Td>
              <Td>{formatDuration(s.duration_ms)}</Td>
              <Td>{s.status}</Td>
            </tr>
          ))}
        </Table>
      )}
    </Card>
  )
}

export function IntegrityResult({ report }: { report: IntegrityReport }) {
  return (
    <div className="text-sm" data-testid="integrity-result">
      <p className="flex items-center gap-2">
        <Badge tone={report.ok ? 'ok' : 'broken'}>{report.ok ? 'intact' : 'broken'}</Badge>
        {report.ok
          ? `The hash chain holds: ${report.store_events} stored events${report.checked_kafka ? `, ${report.kafka_events} on Kafka` : ''}.`
          : `${report.breaks.length} break(s) found.`}
      </p>
      {report.unrelayed > 0 && <p className="text-slate-700">{report.unrelayed} event(s) not yet relayed to Kafka.</p>}
      {report.breaks.length > 0 && (
        <Table caption="Where the chain breaks" head={['Where', 'Kind', 'Aggregate', 'Version', 'Detail']}>
          {report.breaks.map((b, i) => (
            <tr key={i}>
              <Td>{b.where}</Td>
              <Td>{b.kind}</Td>
              <Td className="font-mono text-xs">{b.aggregate_id}</Td>
              <Td>{b.aggregate_version ?? '—'}</Td>
              <Td>{b.detail}</Td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  )
}

export function VerifyRun({ executionId }: { executionId: string }) {
  const verify = useQuery({
    queryKey: ['verify', executionId],
    queryFn: () => getJson<IntegrityReport>(`/executions/${executionId}/verify`),
    enabled: false,
    retry: false,
  })
  return (
    <Card
      title="History integrity"
      id="integrity"
      actions={
        <Button size="sm" onClick={() => void verify.refetch()} disabled={verify.isFetching}>
          {verify.isFetching ? 'Verifying…' : 'Verify hash chain'}
        </Button>
      }
    >
      {verify.isError && <ProblemAlert error={verify.error} />}
      {verify.data ? (
        <IntegrityResult report={verify.data} />
      ) : (
        <p className="text-sm text-slate-600">
          Re-checks every stored event of this run against its hash chain, on the server.{' '}
          <Link className="text-indigo-700 underline" to="/integrity">
            Tenant-wide check
          </Link>
        </p>
      )}
    </Card>
  )
}
