import { useQuery } from '@tanstack/react-query'
import { useState, type FormEvent } from 'react'
import { getJson } from '../api/client'
import type { IntegrityReport } from '../api/types'
import { useAuth } from '../auth/AuthContext'
import { IntegrityResult } from '../components/run/RunSections'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Input } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export default function Integrity() {
  const { can } = useAuth()
  const [runId, setRunId] = useState('')
  const [asked, setAsked] = useState<string | null>(null)
  const run = useQuery({
    queryKey: ['verify', asked],
    queryFn: () => getJson<IntegrityReport>(`/executions/${asked}/verify`),
    enabled: asked !== null,
    retry: false,
  })
  const tenant = useQuery({
    queryKey: ['verify-tenant'],
    queryFn: () => getJson<IntegrityReport>('/verify'),
    enabled: false,
    retry: false,
  })
  const valid = UUID.test(runId.trim())

  function submit(event: FormEvent) {
    event.preventDefault()
    if (valid) setAsked(runId.trim().toLowerCase())
  }

  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">History integrity</h1>
      <p className="max-w-3xl text-sm text-slate-700">
        Every event of a run carries the hash of the one before it. The gateway re-reads the stored events (and the
        Kafka topics) and recomputes the chain: an edited, missing or repeated event shows where the chain breaks.
      </p>
      <Card title="Verify one run" id="verify-run">
        <form onSubmit={submit} className="flex flex-wrap items-end gap-2">
          <div className="w-96 max-w-full">
            <Field label="Run id" htmlFor="verify-id">
              <Input id="verify-id" value={runId} onChange={(e) => setRunId(e.target.value)} placeholder="00000000-0000-0000-0000-000000000000" />
            </Field>
          </div>
          <Button type="submit" variant="primary" disabled={!valid || run.isFetching}>
            {run.isFetching ? 'Verifying…' : 'Verify'}
          </Button>
        </form>
        <div className="mt-3">
          {run.isError && <ProblemAlert error={run.error} />}
          {run.data && <IntegrityResult report={run.data} />}
        </div>
      </Card>
      {can('operator') && (
        <Card
          title="Verify the whole tenant"
          id="verify-tenant"
          actions={
            <Button onClick={() => void tenant.refetch()} disabled={tenant.isFetching}>
              {tenant.isFetching ? 'Verifying…' : 'Verify every run'}
            </Button>
          }
        >
          {tenant.isError && <ProblemAlert error={tenant.error} />}
          {tenant.data ? (
            <IntegrityResult report={tenant.data} />
          ) : (
            <p className="text-sm text-slate-600">Checks every aggregate of your tenant; may take a while on a long history.</p>
          )}
        </Card>
      )}
    </div>
  )
}
