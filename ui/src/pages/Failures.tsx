import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { getJson } from '../api/client'
import type { Failure, Page } from '../api/types'
import { Badge } from '../components/ui/Badge'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Input, Select } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import { PageTrail } from '../lib/filters'
import { formatTime, shortId } from '../lib/format'
import { FailureGroups } from './Operations'

const KINDS = ['exception', 'timeout', 'postcondition_failed', 'hallucination', 'policy_violation', 'budget_exceeded', 'consensus_failed']

export default function Failures() {
  const [params, setParams] = useSearchParams()
  const [trail, setTrail] = useState(() => new PageTrail())
  const query = {
    q: params.get('q') ?? '',
    kind: params.get('kind') ?? '',
    signature: params.get('signature') ?? '',
  }
  const failures = useQuery({
    queryKey: ['failures', query, trail.current],
    queryFn: () => getJson<Page<Failure>>('/failures', { ...query, limit: 50, cursor: trail.current }),
    refetchInterval: 15_000,
  })
  function set(name: string, value: string) {
    const next = new URLSearchParams(params)
    if (value) next.set(name, value)
    else next.delete(name)
    setTrail(new PageTrail())
    setParams(next)
  }
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Failures</h1>
      <FailureGroups hours={24 * 7} />
      <Card
        title="Failures and their recovery"
        id="failure-list"
        actions={
          <>
            <Button size="sm" disabled={!trail.hasPrevious} onClick={() => setTrail(trail.previous())}>
              Previous page
            </Button>
            <Button size="sm" disabled={!failures.data?.next_cursor} onClick={() => failures.data?.next_cursor && setTrail(trail.next(failures.data.next_cursor))}>
              Next page
            </Button>
          </>
        }
      >
        <form className="mb-3 grid gap-3 sm:grid-cols-3" onSubmit={(e) => e.preventDefault()}>
          <Field label="Search messages" htmlFor="f-q">
            <Input id="f-q" type="search" defaultValue={query.q} onChange={(e) => set('q', e.target.value)} />
          </Field>
          <Field label="Kind" htmlFor="f-kind">
            <Select id="f-kind" value={query.kind} onChange={(e) => set('kind', e.target.value)}>
              <option value="">Any kind</option>
              {KINDS.map((k) => (
                <option key={k} value={k}>
                  {k.replaceAll('_', ' ')}
                </option>
              ))}
            </Select>
          </Field>
          <Field label="Signature" htmlFor="f-sig">
            <Input id="f-sig" value={query.signature} onChange={(e) => set('signature', e.target.value)} />
          </Field>
        </form>
        {failures.isPending && <Loading />}
        {failures.isError && <ProblemAlert error={failures.error} />}
        {failures.data && failures.data.items.length === 0 && <p className="text-sm text-slate-600">No failures match.</p>}
        {failures.data && failures.data.items.length > 0 && (
          <Table caption="Failures, newest first" head={['Detected', 'Run', 'Step', 'Kind', 'Message', 'Recovery', 'Why']}>
            {failures.data.items.map((f) => (
              <tr key={f.failure_id}>
                <Td>{formatTime(f.detected_at)}</Td>
                <Td>
                  {f.execution_id ? (
                    <Link className="font-mono text-indigo-700 underline" to={`/runs/${f.execution_id}`}>
                      {shortId(f.execution_id)}
                    </Link>
                  ) : (
                    '—'
                  )}
                </Td>
                <Td className="font-mono">
                  {f.step_id ?? '—'}
                  {f.attempt ? ` #${f.attempt}` : ''}
                </Td>
                <Td>{f.kind ?? '—'}</Td>
                <Td className="max-w-sm">{f.message}</Td>
                <Td>{f.plan ? <Badge tone="running">{f.plan}</Badge> : '—'}</Td>
                <Td className="max-w-xs text-xs">{f.plan_reason}</Td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </div>
  )
}
