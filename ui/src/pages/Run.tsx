import { useQueryClient } from '@tanstack/react-query'
import { useEffect, useMemo, useRef, useState } from 'react'
import { Link, useParams } from 'react-router'
import { useRunCommand, type RunCommand } from '../api/actions'
import { keys, useRun, useTimeline, useWorkflow } from '../api/queries'
import { followRun, type StreamStatus } from '../api/stream'
import { ACTIVE_STATES, type Approval, type StreamEvent } from '../api/types'
import { useAuth } from '../auth/AuthContext'
import { Dag } from '../components/Dag'
import { ActionDialog } from '../components/run/ActionDialog'
import { Checkpoints } from '../components/run/Checkpoints'
import { Suggestions } from '../components/run/Suggestions'
import {
  Attempts,
  Consensus,
  FailuresAndRecovery,
  LlmCalls,
  PolicyEvaluations,
  TimelineList,
  VerifyRun,
} from '../components/run/RunSections'
import { Badge } from '../components/ui/Badge'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Select } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { stepsOf } from '../lib/dag'
import { formatCost, formatCount, formatDuration, formatTime } from '../lib/format'
import { throttle } from '../lib/throttle'
import { deciders, fromModel, fromStream, mergeTimeline } from '../lib/timeline'

type Dialog = null | { kind: 'cancel' | 'halt' | 'rollback' } | { kind: 'grant' | 'reject'; approval: Approval }

function LiveStatus({ status }: { status: StreamStatus }) {
  const [label, tone] =
    status.state === 'live'
      ? ['live', 'bg-green-600']
      : status.state === 'ended'
        ? ['run ended', 'bg-slate-500']
        : status.state === 'waiting'
          ? ['waiting for events', 'bg-amber-500']
          : status.state === 'error'
            ? ['reconnecting', 'bg-red-600']
            : ['connecting', 'bg-amber-500']
  return (
    <span role="status" data-testid="live-status" data-state={status.state} className="flex items-center gap-1 text-xs text-slate-700">
      <span aria-hidden="true" className={`inline-block size-2 rounded-full ${tone}`} />
      {label}
    </span>
  )
}

export default function Run() {
  const { executionId = '' } = useParams()
  const { can } = useAuth()
  const queryClient = useQueryClient()
  const run = useRun(executionId)
  const timeline = useTimeline(executionId, run.isSuccess)
  const workflow = useWorkflow(run.data?.workflow_id, run.data?.workflow_version)
  const send = useRunCommand(run.data)
  const [live, setLive] = useState<StreamEvent[]>([])
  const [status, setStatus] = useState<StreamStatus>({ state: 'connecting' })
  const [dialog, setDialog] = useState<Dialog>(null)
  const [checkpointId, setCheckpointId] = useState('')
  const refresh = useRef<ReturnType<typeof setTimeout> | null>(null)
  // The graph's layout is memoised on its steps: keep them the same array between renders.
  const dagSteps = useMemo(() => stepsOf(workflow.data?.definition), [workflow.data])

  // Follow the run live once it is known to exist (and to be this tenant's).
  const exists = run.isSuccess
  useEffect(() => {
    if (!exists) return
    setLive([])
    // Events arriving together render together: at most one render every 50 ms (a busy
    // run sends dozens a second, and each render merges and lays out the whole timeline).
    let pending: StreamEvent[] = []
    const flush = throttle(() => {
      const batch = pending
      pending = []
      if (batch.length > 0) setLive((current) => [...current, ...batch])
    }, 50)
    const stop = followRun(executionId, {
      onEvent: (event) => {
        // The live read model was rebuilt: the run's events follow again from its first.
        if (event.event_type === 'resync') {
          pending = []
          setLive([])
          return
        }
        pending.push(event)
        flush()
        // New facts: refresh the run and its read model (the timeline page of up to 2,000
        // events among them) at most once a second.
        if (refresh.current === null) {
          refresh.current = setTimeout(() => {
            refresh.current = null
            void queryClient.invalidateQueries({ queryKey: keys.run(executionId) })
            void queryClient.invalidateQueries({ queryKey: keys.timeline(executionId) })
          }, 1_000)
        }
      },
      onStatus: setStatus,
    })
    return () => {
      stop()
      flush.cancel()
      if (refresh.current !== null) clearTimeout(refresh.current)
      refresh.current = null
    }
  }, [executionId, exists, queryClient])

  const items = useMemo(
    () => mergeTimeline((timeline.data?.events ?? []).map(fromModel), live.map(fromStream)),
    [timeline.data, live],
  )

  if (run.isPending) return <Loading />
  if (run.isError) {
    return (
      <div className="flex flex-col gap-3">
        <h1 className="text-2xl font-semibold">Run {executionId}</h1>
        <ProblemAlert error={run.error} onRetry={() => void run.refetch()} />
        <Link className="text-indigo-700 underline" to="/runs">
          Back to runs
        </Link>
      </div>
    )
  }
  const r = run.data
  const summary = timeline.data?.execution
  const active = ACTIVE_STATES.includes(r.state)
  const pending = r.approvals.filter((a) => a.status === 'pending')
  const stepStatus: Record<string, string> = Object.fromEntries(r.steps.map((s) => [s.step_id, s.status]))
  for (const a of pending) stepStatus[a.step_id] = 'waiting'
  const checkpoints = [...r.checkpoints].sort((a, b) => b.sequence - a.sequence)
  const act = (command: RunCommand) => send(command)

  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div>
          <p className="text-sm text-slate-600">
            <Link className="underline" to="/runs">
              Runs
            </Link>{' '}
            / run
          </p>
          <h1 className="font-mono text-xl font-semibold break-all">{r.execution_id}</h1>
          <p className="mt-1 flex flex-wrap items-center gap-2 text-sm">
            <span data-testid="run-state">
              <Badge>{r.state}</Badge>
            </span>
            <span>
              workflow{' '}
              <Link className="text-indigo-700 underline" to={`/workflows/${r.workflow_id}`}>
                {workflow.data?.name ?? r.workflow_id.slice(0, 8)}
              </Link>{' '}
              v{r.workflow_version}
            </span>
            <span className="text-slate-600">started {formatTime(r.started_at)}</span>
            {r.rollbacks > 0 && <span className="text-slate-700">{r.rollbacks} rollback(s)</span>}
            <LiveStatus status={status} />
          </p>
        </div>
        {/* Actions by role: a viewer sees none; the gateway refuses them anyway. */}
        <div className="flex flex-wrap gap-2" aria-label="Run actions" role="group">
          {can('developer') && active && (
            <Button onClick={() => setDialog({ kind: 'cancel' })}>Cancel run</Button>
          )}
          {can('operator') && active && (
            <Button variant="danger" onClick={() => setDialog({ kind: 'halt' })}>
              Halt
            </Button>
          )}
          {can('operator') && r.state === 'running' && r.checkpoints.length > 0 && (
            <Button onClick={() => setDialog({ kind: 'rollback' })}>Roll back…</Button>
          )}
        </div>
      </div>

      {status.state === 'error' && <ProblemAlert error={status.error} />}

      <div className="grid grid-cols-2 gap-3 sm:grid-cols-4 lg:grid-cols-6">
        {[
          ['Steps done', summary ? formatCount(summary.steps_completed) : '—'],
          ['Failed attempts', summary ? formatCount(summary.steps_failed) : '—'],
          ['Tokens', summary ? formatCount(summary.total_tokens) : '—'],
          ['Cost', summary ? formatCost(summary.total_cost_usd) : '—'],
          ['Duration', formatDuration(summary?.duration_ms)],
          ['Version', String(r.version)],
        ].map(([label, value]) => (
          <div key={label} className="rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200">
            <p className="text-xs text-slate-600">{label}</p>
            <p className="text-lg font-semibold">{value}</p>
          </div>
        ))}
      </div>

      {pending.length > 0 && (
        <Card title="Waiting for approval" id="approvals" className="ring-amber-300">
          <ul className="flex flex-col gap-2">
            {pending.map((a) => (
              <li key={a.step_id} className="flex flex-wrap items-center justify-between gap-2 text-sm" data-testid="pending-approval">
                <span>
                  Step <span className="font-mono">{a.step_id}</span>: {a.prompt ?? 'approval requested'} — default{' '}
                  <strong>{a.default_action}</strong> at {formatTime(a.deadline)}
                  {a.escalated_at ? (
                    <span data-testid="approval-escalated">
                      {' '}
                      <Badge tone="waiting_for_approval">escalated</Badge> {formatTime(a.escalated_at)} to{' '}
                      {deciders(a.approvers ?? [], a.approver_role)}
                    </span>
                  ) : (
                    (a.approvers?.length ?? 0) > 0 || a.approver_role ? ` · decided by ${deciders(a.approvers ?? [], a.approver_role)}` : ''
                  )}
                </span>
                {can('operator') && (
                  <span className="flex gap-2">
                    <Button variant="primary" size="sm" onClick={() => setDialog({ kind: 'grant', approval: a })}>
                      Approve
                    </Button>
                    <Button variant="danger" size="sm" onClick={() => setDialog({ kind: 'reject', approval: a })}>
                      Reject
                    </Button>
                  </span>
                )}
              </li>
            ))}
          </ul>
        </Card>
      )}

      <Card title="Workflow graph" id="dag">
        {workflow.isError ? <ProblemAlert error={workflow.error} /> : <Dag steps={dagSteps} status={stepStatus} />}
      </Card>

      {timeline.isError && <ProblemAlert error={timeline.error} onRetry={() => void timeline.refetch()} />}
      <TimelineList items={items} status={<LiveStatus status={status} />} />
      <Attempts steps={timeline.data?.steps ?? []} />
      <FailuresAndRecovery items={items} />
      <Suggestions executionId={r.execution_id} hasFailure={items.some((i) => i.type === 'StepFailed' || i.type === 'FailureDetected')} />
      <Consensus items={items} />
      <PolicyEvaluations items={items} />
      <Checkpoints executionId={r.execution_id} checkpoints={r.checkpoints} />
      <LlmCalls executionId={r.execution_id} />

      <Card title="Input and outcome" id="io">
        <div className="grid gap-3 md:grid-cols-2">
          <div>
            <h3 className="text-sm font-semibold">Input</h3>
            <pre tabIndex={0} className="max-h-64 overflow-auto rounded bg-slate-100 p-2 text-xs">{JSON.stringify(r.input, null, 2)}</pre>
          </div>
          <div>
            <h3 className="text-sm font-semibold">Outcome</h3>
            <pre tabIndex={0} className="max-h-64 overflow-auto rounded bg-slate-100 p-2 text-xs">{JSON.stringify(r.outcome, null, 2)}</pre>
          </div>
        </div>
        <h3 className="mt-3 text-sm font-semibold">Step outputs</h3>
        {r.steps.map((s) => (
          <details key={s.step_id} className="text-sm">
            <summary className="cursor-pointer">
              <span className="font-mono">{s.step_id}</span> — {s.status}, {s.attempts} attempt(s)
            </summary>
            <pre tabIndex={0} className="max-h-64 overflow-auto rounded bg-slate-100 p-2 text-xs">
              {s.error ? `error: ${s.error}\n` : ''}
              {JSON.stringify(s.output, null, 2)}
            </pre>
          </details>
        ))}
      </Card>

      <VerifyRun executionId={r.execution_id} />

      <ActionDialog
        open={dialog?.kind === 'cancel'}
        title="Cancel this run?"
        confirm="Cancel run"
        danger
        onClose={() => setDialog(null)}
        onConfirm={(reason) => act({ kind: 'cancel', reason })}
      >
        <p className="text-sm">Steps still running finish; no new step starts. This cannot be undone.</p>
      </ActionDialog>
      <ActionDialog
        open={dialog?.kind === 'halt'}
        title="Halt this run?"
        confirm="Halt run"
        danger
        reasonRequired
        onClose={() => setDialog(null)}
        onConfirm={(reason) => act({ kind: 'halt', reason })}
      >
        <p className="text-sm">An operator's stop: the run ends as halted, with your reason recorded.</p>
      </ActionDialog>
      <ActionDialog
        open={dialog?.kind === 'rollback'}
        title="Roll back to a checkpoint"
        confirm="Roll back"
        onClose={() => setDialog(null)}
        onConfirm={(reason) => act({ kind: 'rollback', checkpointId: checkpointId || (checkpoints[0]?.checkpoint_id ?? ''), reason })}
      >
        <Field label="Checkpoint" htmlFor="rollback-checkpoint" hint="The steps return to how they were there, and the run resumes from it.">
          <Select id="rollback-checkpoint" value={checkpointId || (checkpoints[0]?.checkpoint_id ?? '')} onChange={(e) => setCheckpointId(e.target.value)}>
            {checkpoints.map((c) => (
              <option key={c.checkpoint_id} value={c.checkpoint_id}>
                {c.position} {c.step_id} (#{c.sequence})
              </option>
            ))}
          </Select>
        </Field>
      </ActionDialog>
      <ActionDialog
        open={dialog?.kind === 'grant'}
        title={`Approve step ${dialog && 'approval' in dialog ? dialog.approval.step_id : ''}`}
        confirm="Approve"
        reasonLabel="Comment"
        onClose={() => setDialog(null)}
        onConfirm={(comment) =>
          dialog && 'approval' in dialog ? act({ kind: 'grant', stepId: dialog.approval.step_id, comment }) : Promise.resolve()
        }
      />
      <ActionDialog
        open={dialog?.kind === 'reject'}
        title={`Reject step ${dialog && 'approval' in dialog ? dialog.approval.step_id : ''}`}
        confirm="Reject"
        danger
        reasonLabel="Comment"
        onClose={() => setDialog(null)}
        onConfirm={(comment) =>
          dialog && 'approval' in dialog ? act({ kind: 'reject', stepId: dialog.approval.step_id, comment }) : Promise.resolve()
        }
      />
    </div>
  )
}
