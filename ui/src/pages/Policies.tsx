import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { Link } from 'react-router'
import { getJson } from '../api/client'
import type { Policy } from '../api/types'
import { Badge } from '../components/ui/Badge'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import { formatCount, formatTime, shortId } from '../lib/format'

interface PolicySummary {
  policy_id: string
  latest_version: number
  package: string
  module: string
  mode: string
  description: string | null
  published_by: string | null
  published_at: string
  violations: number
  warnings: number
  evaluation_errors: number
  last_violation_at: string | null
}

interface Violation {
  event_id: string
  kind: string
  policy_id: string
  policy_version: number | null
  mode: string | null
  execution_id: string | null
  step_id: string | null
  messages: string[]
  error: string | null
  occurred_at: string
}

interface ApprovalDecision {
  event_id: string
  event_type: string
  execution_id: string
  step_id: string | null
  occurred_at: string
  decided_by: string | null
  comment: string | null
  by_default: boolean | null
  prompt: string | null
  /** Who may decide (requested, escalated: the escalation's deciders). */
  approvers?: string[] | null
}

/** The "What" of an approval event in the history. */
function ApprovalWhat({ event }: { event: ApprovalDecision }) {
  switch (event.event_type) {
    case 'HumanApprovalRequested':
      return <>requested</>
    case 'HumanApprovalEscalated':
      return <Badge tone="waiting_for_approval">escalated</Badge>
    case 'HumanApprovalGranted':
      return <Badge>granted</Badge>
    case 'HumanApprovalRejected':
      return <Badge>rejected</Badge>
    default:
      return <>{event.event_type}</>
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function PolicyDetail({ summary }: { summary: PolicySummary }) {
  const [version, setVersion] = useState(summary.latest_version)
  // Older versions' source comes from the write side (by id), the latest is in the read model.
  const older = useQuery({
    queryKey: ['policy', summary.policy_id, version],
    queryFn: () => getJson<Policy>(`/policies/${summary.policy_id}`, { policy_version: version }),
    enabled: version !== summary.latest_version && UUID.test(summary.policy_id),
  })
  const violations = useQuery({
    queryKey: ['violations', summary.policy_id],
    queryFn: () => getJson<Violation[]>('/compliance/violations', { policy_id: summary.policy_id, limit: 50 }),
  })
  const module = version === summary.latest_version ? summary.module : older.data?.module
  return (
    <div className="mt-3 grid gap-3 lg:grid-cols-2">
      <div>
        <div className="mb-1 flex items-center gap-2">
          <h3 className="text-sm font-semibold">Rego source</h3>
          <label className="text-xs" htmlFor={`pv-${summary.policy_id}`}>
            version
          </label>
          <select
            id={`pv-${summary.policy_id}`}
            className="rounded ring-1 ring-slate-400 text-xs"
            value={version}
            onChange={(e) => setVersion(Number(e.target.value))}
          >
            {Array.from({ length: summary.latest_version }, (_, i) => summary.latest_version - i).map((v) => (
              <option key={v} value={v}>
                v{v}
              </option>
            ))}
          </select>
        </div>
        {older.isError && <ProblemAlert error={older.error} />}
        <pre tabIndex={0} className="max-h-96 overflow-auto rounded bg-slate-900 p-3 text-xs text-slate-100">{module ?? '…'}</pre>
      </div>
      <div>
        <h3 className="mb-1 text-sm font-semibold">Latest violations</h3>
        {violations.isPending && <Loading />}
        {violations.isError && <ProblemAlert error={violations.error} />}
        {violations.data && violations.data.length === 0 && <p className="text-sm text-slate-600">None recorded.</p>}
        <ul className="text-sm">
          {(violations.data ?? []).map((v) => (
            <li key={v.event_id} className="border-b border-slate-100 py-1">
              <span className="text-xs text-slate-600">{formatTime(v.occurred_at)}</span> <Badge tone={v.mode === 'deny' ? 'failed' : 'waiting_for_approval'}>{v.kind === 'violated' ? (v.mode ?? 'violated') : 'error'}</Badge>{' '}
              {v.execution_id && (
                <Link className="font-mono text-indigo-700 underline" to={`/runs/${v.execution_id}`}>
                  {shortId(v.execution_id)}
                </Link>
              )}{' '}
              {v.step_id && <span className="font-mono">{v.step_id}</span>} {v.messages.join('; ') || v.error}
            </li>
          ))}
        </ul>
      </div>
    </div>
  )
}

export default function Policies() {
  const policies = useQuery({
    queryKey: ['compliance-policies'],
    queryFn: () => getJson<PolicySummary[]>('/compliance/policies'),
  })
  const approvals = useQuery({
    queryKey: ['compliance-approvals'],
    queryFn: () => getJson<ApprovalDecision[]>('/compliance/approvals', { limit: 100 }),
  })
  const [open, setOpen] = useState<string | null>(null)
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Policies and approvals</h1>
      <Card title="Policies" id="policy-list">
        {policies.isPending && <Loading />}
        {policies.isError && <ProblemAlert error={policies.error} />}
        {policies.data && policies.data.length === 0 && <p className="text-sm text-slate-600">No policies published.</p>}
        {(policies.data ?? []).map((p) => (
          <div key={p.policy_id} className="border-b border-slate-100 py-2" data-testid="policy-row">
            <div className="flex flex-wrap items-center gap-3 text-sm">
              <span className="font-mono font-medium">{p.package}</span>
              <Badge tone={p.mode === 'deny' ? 'failed' : 'waiting_for_approval'}>{p.mode}</Badge>
              <span>v{p.latest_version}</span>
              <span>
                {formatCount(p.violations)} denied · {formatCount(p.warnings)} warned · {formatCount(p.evaluation_errors)} errors
              </span>
              <span className="text-slate-600">
                published {formatTime(p.published_at)}
                {p.published_by ? ` by ${p.published_by}` : ''}
              </span>
              <Button size="sm" onClick={() => setOpen(open === p.policy_id ? null : p.policy_id)} aria-expanded={open === p.policy_id}>
                {open === p.policy_id ? 'Hide' : 'Source and violations'}
              </Button>
            </div>
            {p.description && <p className="text-sm text-slate-700">{p.description}</p>}
            {open === p.policy_id && <PolicyDetail summary={p} />}
          </div>
        ))}
      </Card>
      <Card title="Approvals history" id="approval-history">
        {approvals.isPending && <Loading />}
        {approvals.isError && <ProblemAlert error={approvals.error} />}
        {approvals.data && approvals.data.length === 0 && <p className="text-sm text-slate-600">No approvals yet.</p>}
        {approvals.data && approvals.data.length > 0 && (
          <Table caption="Approval requests and decisions, newest first" head={['When', 'Run', 'Step', 'What', 'Who', 'Comment']}>
            {approvals.data.map((a) => (
              <tr key={a.event_id} data-testid="approval-row">
                <Td>{formatTime(a.occurred_at)}</Td>
                <Td>
                  <Link className="font-mono text-indigo-700 underline" to={`/runs/${a.execution_id}`}>
                    {shortId(a.execution_id)}
                  </Link>
                </Td>
                <Td className="font-mono">{a.step_id ?? '—'}</Td>
                <Td>
                  <ApprovalWhat event={a} />
                  {a.by_default ? ' (by default)' : ''}
                </Td>
                <Td>
                  {a.decided_by ??
                    (a.event_type === 'HumanApprovalEscalated'
                      ? `to ${a.approvers && a.approvers.length > 0 ? a.approvers.join(', ') : 'the escalation role'}`
                      : a.approvers && a.approvers.length > 0
                        ? `asked ${a.approvers.join(', ')}`
                        : '—')}
                </Td>
                <Td>{a.comment ?? a.prompt ?? ''}</Td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </div>
  )
}
