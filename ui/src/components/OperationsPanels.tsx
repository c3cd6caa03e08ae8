/** Operations panels: process health (heartbeats) and budgets (usage against run budgets). */

import { useQuery } from '@tanstack/react-query'
import { useMemo } from 'react'
import { Link } from 'react-router'
import { getJson } from '../api/client'
import { formatCost, formatCount, formatTime } from '../lib/format'
import { Badge } from './ui/Badge'
import { Card } from './ui/Card'
import { ProblemAlert } from './ui/ProblemAlert'
import { Loading } from './ui/Spinner'
import { Table, Td } from './ui/Table'

interface ProcessHealth {
  kind: string
  name: string
  instance_id: string
  host: string
  pid: number
  status: 'ok' | 'stale' | 'stopped'
  started_at: string
  beat_at: string
  age_s: number
  interval_s: number
  lag: number | null
  last_batch_at: string | null
  events: number
  partitions: number[]
  details: Record<string, number | string>
}

interface HealthReport {
  measured_at: string
  ok: number
  stale: number
  stopped: number
  processes: ProcessHealth[]
}

const STATUS_TONE = { ok: 'ok', stale: 'failed', stopped: 'cancelled' } as const

function age(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s ago`
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`
  return `${(seconds / 3600).toFixed(1)} h ago`
}

export function Health() {
  const health = useQuery({
    queryKey: ['health'],
    queryFn: () => getJson<HealthReport>('/operations/health'),
    refetchInterval: 5_000,
  })
  const data = health.data
  return (
    <Card
      title="Processor and worker health"
      id="health"
      actions={
        data && (
          <span className="flex gap-2 text-xs" data-testid="health-counts">
            <Badge tone="ok">{`${data.ok} ok`}</Badge>
            <Badge tone={data.stale ? 'failed' : 'cancelled'}>{`${data.stale} stale`}</Badge>
            <Badge tone="cancelled">{`${data.stopped} stopped`}</Badge>
          </span>
        )
      }
    >
      {health.isPending && <Loading />}
      {health.isError && <ProblemAlert error={health.error} />}
      {data && data.processes.length === 0 && (
        <p className="text-sm text-slate-600">No process has reported a heartbeat (none is running, or they cannot reach Redis).</p>
      )}
      {data && data.processes.length > 0 && (
        <Table caption="The last heartbeat of each process; stale means none for three of its intervals" head={['Process', 'Instance', 'Status', 'Last beat', 'Lag', 'Last batch', 'Handled', 'Partitions', 'Other']}>
          {data.processes.map((p) => (
            <tr key={`${p.kind}/${p.name}/${p.instance_id}`} data-testid="health-row" data-status={p.status}>
              <Td className="font-medium">
                {p.name} <span className="text-xs font-normal text-slate-600">{p.kind}</span>
              </Td>
              <Td className="font-mono text-xs">
                {p.instance_id}
                <span className="block text-slate-600">
                  {p.host} · pid {p.pid}
                </span>
              </Td>
              <Td>
                <Badge tone={STATUS_TONE[p.status]}>{p.status}</Badge>
              </Td>
              <Td>{age(p.age_s)}</Td>
              <Td>{formatCount(p.lag)}</Td>
              <Td>{p.last_batch_at ? formatTime(p.last_batch_at) : '—'}</Td>
              <Td>{formatCount(p.events)}</Td>
              <Td className="text-xs">{p.partitions.join(', ') || '—'}</Td>
              <Td className="text-xs">
                {Object.entries(p.details)
                  .map(([k, v]) => `${k.replaceAll('_', ' ')} ${v}`)
                  .join(' · ') || '—'}
              </Td>
            </tr>
          ))}
        </Table>
      )}
    </Card>
  )
}

interface WorkflowBudget {
  workflow_id: string | null
  name: string | null
  runs: number
  runs_with_budget: number
  tokens: number
  cost_usd: number
  max_run_tokens: number
  max_run_cost_usd: number
  avg_run_cost_usd: number
  token_limit: number | null
  cost_limit_usd: number | null
  peak_token_share: number | null
  peak_cost_share: number | null
  near_limit: number
  exceeded: number
}

interface BudgetReport {
  start: string
  end: string
  near_share: number
  tenant: { runs: number; runs_with_budget: number; tokens: number; cost_usd: number; near_limit: number; exceeded: number }
  workflows: WorkflowBudget[]
}

function Share({ share }: { share: number | null }) {
  if (share === null) return <span className="text-slate-600">—</span>
  const percent = Math.round(share * 100)
  const tone = share >= 1 ? 'bg-red-700' : share >= 0.8 ? 'bg-amber-600' : 'bg-green-700'
  return (
    <span className="flex items-center gap-2">
      <span className="h-2 w-20 overflow-hidden rounded bg-slate-200" aria-hidden="true">
        <span className={`block h-full ${tone}`} style={{ width: `${Math.min(100, percent)}%` }} />
      </span>
      <span>{percent}%</span>
    </span>
  )
}

export function Budgets({ hours }: { hours: number }) {
  const start = useMemo(() => new Date(Date.now() - Math.min(hours, 24 * 366) * 3600_000).toISOString(), [hours])
  const budgets = useQuery({
    queryKey: ['budgets', hours],
    queryFn: () => getJson<BudgetReport>('/analytics/budgets', { start }),
    refetchInterval: 15_000,
  })
  const data = budgets.data
  return (
    <Card title="Budgets" id="budgets">
      {budgets.isPending && <Loading />}
      {budgets.isError && <ProblemAlert error={budgets.error} />}
      {data && (
        <>
          <p className="mb-3 text-sm text-slate-700" data-testid="budget-tenant">
            This tenant: {formatCount(data.tenant.runs)} runs, {formatCount(data.tenant.tokens)} tokens, {formatCost(data.tenant.cost_usd)};{' '}
            {formatCount(data.tenant.runs_with_budget)} with a budget, {formatCount(data.tenant.near_limit)} at {Math.round(data.near_share * 100)}% of a limit or more,{' '}
            {formatCount(data.tenant.exceeded)} stopped by one. Budgets are set per run in a workflow&apos;s <code>policies.budget</code>; there is no tenant-wide limit.
          </p>
          {data.workflows.length === 0 ? (
            <p className="text-sm text-slate-600">No runs in this window.</p>
          ) : (
            <Table caption="Tokens and cost per workflow against its runs' budget" head={['Workflow', 'Runs', 'Tokens', 'Cost', 'Largest run', 'Limits (latest run)', 'Peak of token limit', 'Peak of cost limit', 'Near limit', 'Stopped by budget']}>
              {data.workflows.map((w) => (
                <tr key={w.workflow_id ?? 'none'} data-testid="budget-row">
                  <Td className="font-medium">
                    {w.workflow_id ? (
                      <Link className="text-indigo-700 underline" to={`/workflows/${w.workflow_id}`}>
                        {w.name ?? w.workflow_id.slice(0, 8)}
                      </Link>
                    ) : (
                      '—'
                    )}
                  </Td>
                  <Td>{formatCount(w.runs)}</Td>
                  <Td>{formatCount(w.tokens)}</Td>
                  <Td>{formatCost(w.cost_usd)}</Td>
                  <Td className="text-xs">
                    {formatCount(w.max_run_tokens)} tokens · {formatCost(w.max_run_cost_usd)}
                  </Td>
                  <Td className="text-xs">
                    {w.token_limit === null && w.cost_limit_usd === null
                      ? 'no budget'
                      : `${w.token_limit === null ? '—' : formatCount(w.token_limit)} tokens · ${formatCost(w.cost_limit_usd)}`}
                  </Td>
                  <Td>
                    <Share share={w.peak_token_share} />
                  </Td>
                  <Td>
                    <Share share={w.peak_cost_share} />
                  </Td>
                  <Td>{formatCount(w.near_limit)}</Td>
                  <Td>{w.exceeded ? <Badge tone="failed">{String(w.exceeded)}</Badge> : '0'}</Td>
                </tr>
              ))}
            </Table>
          )}
        </>
      )}
    </Card>
  )
}
