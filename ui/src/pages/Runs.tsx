import { useMemo, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useLiveRuns } from '../api/liveRuns'
import { useRuns, useWorkflows } from '../api/queries'
import { RUN_STATES } from '../api/types'
import { Badge } from '../components/ui/Badge'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Input, Select } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import {
  fromLocalInput,
  PageTrail,
  parseRunFilters,
  runFiltersToParams,
  runFiltersToQuery,
  toLocalInput,
  type RunFilters,
} from '../lib/filters'
import { formatCost, formatCount, formatDuration, formatTime, shortId } from '../lib/format'

export default function Runs() {
  const [params, setParams] = useSearchParams()
  const filters = useMemo(() => parseRunFilters(params), [params])
  const query = useMemo(() => runFiltersToQuery(filters), [filters])
  const [trail, setTrail] = useState(() => new PageTrail())
  const live = useLiveRuns()
  const runs = useRuns(query, trail.current, live === 'live')
  const workflows = useWorkflows()
  const names = useMemo(
    () => new Map((workflows.data ?? []).map((w) => [w.workflow_id, w.name])),
    [workflows.data],
  )

  function update(change: Partial<RunFilters>) {
    setTrail(new PageTrail())
    setParams(runFiltersToParams({ ...filters, ...change }))
  }

  return (
    <div className="flex flex-col gap-4">
      <div className="flex items-baseline gap-3">
        <h1 className="text-2xl font-semibold">Runs</h1>
        <span className="text-sm text-slate-600" data-testid="runs-live" data-state={live} role="status">
          {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Refreshing every 3 s'}
        </span>
      </div>
      <Card>
        <form className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4" onSubmit={(e) => e.preventDefault()}>
          <Field label="Workflow" htmlFor="f-workflow">
            <Select
              id="f-workflow"
              value={filters.workflowId ?? ''}
              onChange={(e) => update({ workflowId: e.target.value || null })}
            >
              <option value="">All workflows</option>
              {(workflows.data ?? []).map((w) => (
                <option key={w.workflow_id} value={w.workflow_id}>
                  {w.name}
                </option>
              ))}
            </Select>
          </Field>
          <Field label="State" htmlFor="f-state">
            <Select
              id="f-state"
              value={filters.status ?? ''}
              onChange={(e) => update({ status: (e.target.value || null) as RunFilters['status'] })}
            >
              <option value="">Any state</option>
              {RUN_STATES.map((state) => (
                <option key={state} value={state}>
                  {state.replaceAll('_', ' ')}
                </option>
              ))}
            </Select>
          </Field>
          <Field label="Started after" htmlFor="f-after">
            <Input
              id="f-after"
              type="datetime-local"
              value={toLocalInput(filters.startedAfter)}
              onChange={(e) => update({ startedAfter: fromLocalInput(e.target.value) })}
            />
          </Field>
          <Field label="Started before" htmlFor="f-before">
            <Input
              id="f-before"
              type="datetime-local"
              value={toLocalInput(filters.startedBefore)}
              onChange={(e) => update({ startedBefore: fromLocalInput(e.target.value) })}
            />
          </Field>
        </form>
      </Card>
      <Card
        title={`Page ${trail.page}`}
        actions={
          <>
            <Button size="sm" disabled={!trail.hasPrevious} onClick={() => setTrail(trail.previous())}>
              Previous page
            </Button>
            <Button
              size="sm"
              disabled={!runs.data?.next_cursor}
              onClick={() => runs.data?.next_cursor && setTrail(trail.next(runs.data.next_cursor))}
            >
              Next page
            </Button>
          </>
        }
      >
        {runs.isError && <ProblemAlert error={runs.error} onRetry={() => void runs.refetch()} />}
        {runs.isPending && <Loading />}
        {runs.data && runs.data.items.length === 0 && (
          <p className="text-sm text-slate-600">No runs match these filters.</p>
        )}
        {runs.data && runs.data.items.length > 0 && (
          <Table
            caption="Runs, newest first"
            head={['Run', 'Workflow', 'State', 'Current step', 'Steps', 'Tokens', 'Cost', 'Duration', 'Started']}
          >
            {runs.data.items.map((run) => (
              <tr key={run.execution_id} data-testid="run-row">
                <Td>
                  <Link className="font-mono text-indigo-700 underline" to={`/runs/${run.execution_id}`}>
                    {shortId(run.execution_id)}
                  </Link>
                </Td>
                <Td>
                  {run.workflow_id ? (names.get(run.workflow_id) ?? shortId(run.workflow_id)) : '—'}
                  {run.workflow_version ? <span className="text-slate-600"> v{run.workflow_version}</span> : null}
                </Td>
                <Td>
                  <Badge>{run.status}</Badge>
                </Td>
                <Td className="font-mono">{run.current_step_id ?? '—'}</Td>
                <Td>
                  {run.steps_completed}
                  {run.steps_failed > 0 && <span className="text-red-700"> ({run.steps_failed} failed)</span>}
                </Td>
                <Td>{formatCount(run.total_tokens)}</Td>
                <Td>{formatCost(run.total_cost_usd)}</Td>
                <Td>{formatDuration(run.duration_ms)}</Td>
                <Td>{formatTime(run.started_at)}</Td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </div>
  )
}
