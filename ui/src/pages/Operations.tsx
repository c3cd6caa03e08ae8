import { useQuery } from '@tanstack/react-query'
import { useMemo, useState } from 'react'
import { Link } from 'react-router'
import { getJson } from '../api/client'
import type { FailureGroup, RunStats, StepStats } from '../api/types'
import { useAuth } from '../auth/AuthContext'
import { Chart, type ChartSeries } from '../components/Chart'
import { Budgets, Health } from '../components/OperationsPanels'
import { Badge } from '../components/ui/Badge'
import { Card } from '../components/ui/Card'
import { Field, Select } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import { groupSteps, PALETTE } from '../lib/analytics'
import { formatCost, formatCount, formatDuration, formatTime } from '../lib/format'

interface LagReport {
  measured_at: string
  projections: {
    projection: string
    lag: number | null
    partitions: { topic: string; partition: number; position: number; end: number; lag: number }[]
    error: string | null
  }[]
}

const WINDOWS = {
  '1h': { hours: 1, bucket: 'minute' },
  '24h': { hours: 24, bucket: 'hour' },
  '7d': { hours: 24 * 7, bucket: 'hour' },
  '30d': { hours: 24 * 30, bucket: 'day' },
} as const
type WindowKey = keyof typeof WINDOWS

function Lag() {
  const lag = useQuery({
    queryKey: ['lag'],
    queryFn: () => getJson<LagReport>('/operations/lag'),
    refetchInterval: 10_000,
  })
  return (
    <Card title="Projection lag" id="lag" actions={lag.data && <span className="text-xs text-slate-600">measured {formatTime(lag.data.measured_at)}</span>}>
      {lag.isPending && <Loading />}
      {lag.isError && <ProblemAlert error={lag.error} />}
      {lag.data && (
        <Table caption="Messages each read model has not applied yet" head={['Projection', 'Lag', 'Partitions behind']}>
          {lag.data.projections.map((p) => (
            <tr key={p.projection} data-testid="lag-row">
              <Td className="font-medium">{p.projection}</Td>
              <Td>{p.error ? <span className="text-red-800">{p.error}</span> : <Badge tone={p.lag ? 'waiting_for_approval' : 'ok'}>{formatCount(p.lag)}</Badge>}</Td>
              <Td className="text-xs">
                {p.partitions
                  .filter((x) => x.lag > 0)
                  .map((x) => `${x.topic}[${x.partition}] ${x.lag}`)
                  .join(', ') || '—'}
              </Td>
            </tr>
          ))}
        </Table>
      )}
    </Card>
  )
}

export function FailureGroups({ hours }: { hours: number }) {
  const start = useMemo(() => new Date(Date.now() - hours * 3600_000).toISOString(), [hours])
  const groups = useQuery({
    queryKey: ['failure-groups', hours],
    queryFn: () => getJson<FailureGroup[] | { groups: FailureGroup[] }>('/failures/groups', { start, size: 20 }),
    refetchInterval: 15_000,
  })
  const items = Array.isArray(groups.data) ? groups.data : (groups.data?.groups ?? [])
  return (
    <Card title="Failure groups" id="failure-groups">
      {groups.isPending && <Loading />}
      {groups.isError && <ProblemAlert error={groups.error} />}
      {groups.data && items.length === 0 && <p className="text-sm text-slate-600">No failures in this window.</p>}
      {items.length > 0 && (
        <Table caption="Similar failures grouped by signature" head={['Signature', 'Kinds', 'Failures', 'Runs', 'First seen', 'Last seen', 'Example']}>
          {items.map((g) => (
            <tr key={g.signature} data-testid="failure-group">
              <Td className="font-mono text-xs">
                <Link className="text-indigo-700 underline" to={`/failures?signature=${encodeURIComponent(g.signature)}`}>
                  {g.signature.slice(0, 16)}
                </Link>
              </Td>
              <Td>{g.kinds.join(', ')}</Td>
              <Td>{formatCount(g.count)}</Td>
              <Td>{formatCount(g.executions)}</Td>
              <Td>{formatTime(g.first_seen)}</Td>
              <Td>{formatTime(g.last_seen)}</Td>
              <Td className="max-w-sm text-xs">{typeof g.sample?.message === 'string' ? g.sample.message : ''}</Td>
            </tr>
          ))}
        </Table>
      )}
    </Card>
  )
}

export default function Operations() {
  const { can } = useAuth()
  const [window, setWindow] = useState<WindowKey>('24h')
  const { hours, bucket } = WINDOWS[window]
  const start = useMemo(() => new Date(Date.now() - hours * 3600_000).toISOString(), [hours])
  const runs = useQuery({
    queryKey: ['analytics-runs', window],
    queryFn: () => getJson<RunStats>('/analytics/runs', { bucket, start }),
    refetchInterval: 15_000,
  })
  const steps = useQuery({
    queryKey: ['analytics-steps', window],
    queryFn: () => getJson<StepStats>('/analytics/steps', { bucket, start, group_by: 'workflow' }),
    refetchInterval: 15_000,
  })

  const range = useMemo<[number, number] | undefined>(
    () => (runs.data ? [Date.parse(runs.data.start) / 1000, Date.parse(runs.data.end) / 1000] : undefined),
    [runs.data],
  )
  const runCharts = useMemo(() => {
    const b = runs.data?.buckets ?? []
    const times = b.map((x) => Date.parse(x.bucket) / 1000)
    return {
      times,
      throughput: [
        { label: 'started', values: b.map((x) => x.runs), color: PALETTE[0] ?? '#000' },
        { label: 'completed', values: b.map((x) => x.completed), color: PALETTE[2] ?? '#000' },
        { label: 'failed', values: b.map((x) => x.failed), color: PALETTE[1] ?? '#000' },
      ] satisfies ChartSeries[],
      failureRate: [{ label: 'failure rate', values: b.map((x) => (x.failure_rate === null ? null : x.failure_rate * 100)), color: PALETTE[1] ?? '#000' }],
      cost: [{ label: 'cost (USD)', values: b.map((x) => x.cost_usd), color: PALETTE[3] ?? '#000' }],
      tokens: [{ label: 'tokens', values: b.map((x) => x.tokens), color: PALETTE[4] ?? '#000' }],
    }
  }, [runs.data])

  const latency = useMemo(() => {
    const b = steps.data?.buckets ?? []
    const p50 = groupSteps(b, (x) => x.p50_ms)
    const p95 = groupSteps(b, (x) => x.p95_ms)
    return {
      times: p50.times,
      series: p50.keys.flatMap((k, i) => [
        { label: `${k.slice(0, 8)} p50`, values: p50.values[k] ?? [], color: PALETTE[i % PALETTE.length] ?? '#000' },
        { label: `${k.slice(0, 8)} p95`, values: p95.values[k] ?? [], color: PALETTE[(i + 3) % PALETTE.length] ?? '#000' },
      ]),
    }
  }, [steps.data])

  const totals = (runs.data?.buckets ?? []).reduce(
    (t, b) => ({ runs: t.runs + b.runs, failed: t.failed + b.failed, cost: t.cost + b.cost_usd, tokens: t.tokens + b.tokens }),
    { runs: 0, failed: 0, cost: 0, tokens: 0 },
  )

  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <h1 className="text-2xl font-semibold">Operations</h1>
        <div className="w-40">
          <Field label="Window" htmlFor="ops-window">
            <Select id="ops-window" value={window} onChange={(e) => setWindow(e.target.value as WindowKey)}>
              {Object.keys(WINDOWS).map((w) => (
                <option key={w} value={w}>
                  last {w}
                </option>
              ))}
            </Select>
          </Field>
        </div>
      </div>
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        {[
          ['Runs started', formatCount(totals.runs)],
          ['Runs failed', formatCount(totals.failed)],
          ['Tokens', formatCount(totals.tokens)],
          ['Cost', formatCost(totals.cost)],
        ].map(([label, value]) => (
          <div key={label} className="rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200">
            <p className="text-xs text-slate-600">{label}</p>
            <p className="text-lg font-semibold" data-testid={`total-${label}`}>
              {value}
            </p>
          </div>
        ))}
      </div>
      {runs.isError && <ProblemAlert error={runs.error} />}
      {steps.isError && <ProblemAlert error={steps.error} />}
      {(runs.isPending || steps.isPending) && <Loading />}
      {runs.data && (
        <div className="grid gap-4 lg:grid-cols-2">
          <Card>
            <Chart range={range} title="Throughput (runs per bucket)" times={runCharts.times} series={runCharts.throughput} />
          </Card>
          <Card>
            <Chart range={range} title="Failure rate (% of finished runs)" times={runCharts.times} series={runCharts.failureRate} format={(v) => `${v.toFixed(0)}%`} />
          </Card>
          <Card>
            <Chart range={range} title="Cost" times={runCharts.times} series={runCharts.cost} format={(v) => formatCost(v)} />
          </Card>
          <Card>
            <Chart range={range} title="Tokens" times={runCharts.times} series={runCharts.tokens} format={(v) => formatCount(v)} />
          </Card>
        </div>
      )}
      {steps.data && (
        <Card>
          <Chart range={range} title="Step latency p50/p95 by workflow" times={latency.times} series={latency.series} format={(v) => formatDuration(v)} />
        </Card>
      )}
      <Budgets hours={hours} />
      {can('operator') ? (
        <>
          <Health />
          <Lag />
        </>
      ) : (
        <Card title="Projection lag and process health" id="lag">
          <p className="text-sm text-slate-600">Projection lag and process health are shown to operators.</p>
        </Card>
      )}
      <FailureGroups hours={hours} />
    </div>
  )
}
