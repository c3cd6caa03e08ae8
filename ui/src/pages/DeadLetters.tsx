/** The DLQ: the tenant's dead letters (why, where from, payload) and re-drive for operators. */

import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { getJson, postJson } from '../api/client'
import { useAuth } from '../auth/AuthContext'
import { Badge } from '../components/ui/Badge'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Input, Select } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import { formatBytes, formatTime } from '../lib/format'

interface DeadLetter {
  letter_id: string
  reason: string
  error_type: string
  source_topic: string
  source_partition: number
  source_offset: number
  consumer_group: string
  failed_at: string
  event_type: string | null
  event_id: string | null
  payload_size: number
  preview_kind: 'avro' | 'json' | 'text' | 'binary'
  payload_preview: string
  redriven_at: string | null
  redriven_by: string | null
}

interface DeadLetterDetail extends DeadLetter {
  key: string | null
  headers: [string, string][]
  redrive_partition: number | null
  redrive_offset: number | null
}

interface DeadLetterPage {
  items: DeadLetter[]
  next_cursor: string | null
  unattributed: number | null
}

interface RedriveResult {
  letter_id: string
  topic: string
  partition: number
  offset: number
  redriven_at: string
  redriven_by: string
  replayed: boolean
}

function Redrive({ letter, onDone }: { letter: DeadLetter; onDone: (result: RedriveResult) => void }) {
  const [confirming, setConfirming] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  async function send() {
    setBusy(true)
    setError(null)
    try {
      onDone(await postJson<RedriveResult>(`/dlq/${encodeURIComponent(letter.letter_id)}/redrive`, {}))
    } catch (caught) {
      setError(caught)
      setBusy(false)
    }
  }
  return (
    <div className="flex flex-col gap-2">
      {!confirming ? (
        <div>
          <Button variant="primary" onClick={() => setConfirming(true)}>
            Re-drive…
          </Button>
        </div>
      ) : (
        <div className="flex flex-wrap items-center gap-2 text-sm">
          <span>
            Put this message back on <span className="font-mono">{letter.source_topic}</span> partition {letter.source_partition}? It is sent once.
          </span>
          <Button variant="primary" disabled={busy} onClick={send}>
            {busy ? 'Sending…' : 'Re-drive now'}
          </Button>
          <Button variant="ghost" onClick={() => setConfirming(false)}>
            Cancel
          </Button>
        </div>
      )}
      {error !== null && <ProblemAlert error={error} />}
    </div>
  )
}

function Detail({ letterId, onChanged }: { letterId: string; onChanged: () => void }) {
  const { can } = useAuth()
  const [result, setResult] = useState<RedriveResult | null>(null)
  const detail = useQuery({
    queryKey: ['dead-letter', letterId],
    queryFn: () => getJson<DeadLetterDetail>(`/dlq/${encodeURIComponent(letterId)}`),
  })
  if (detail.isPending) return <Loading />
  if (detail.isError) return <ProblemAlert error={detail.error} />
  const d = detail.data
  return (
    <Card title={`Dead letter ${d.letter_id}`} id="dlq-detail">
      <dl className="mb-3 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
        <dt className="text-slate-600">Reason</dt>
        <dd data-testid="dlq-reason">{d.reason}</dd>
        <dt className="text-slate-600">Error type</dt>
        <dd>{d.error_type || '—'}</dd>
        <dt className="text-slate-600">Source</dt>
        <dd className="font-mono">
          {d.source_topic}[{d.source_partition}] @ {d.source_offset}
        </dd>
        <dt className="text-slate-600">Consumer group</dt>
        <dd className="font-mono">{d.consumer_group || '—'}</dd>
        <dt className="text-slate-600">Failed at</dt>
        <dd>{formatTime(d.failed_at)}</dd>
        <dt className="text-slate-600">Key</dt>
        <dd className="font-mono">{d.key ?? '—'}</dd>
        <dt className="text-slate-600">Headers</dt>
        <dd className="font-mono text-xs">{d.headers.map(([k, v]) => `${k}=${v}`).join(' · ') || '—'}</dd>
        <dt className="text-slate-600">Re-driven</dt>
        <dd>{d.redriven_at ? `${formatTime(d.redriven_at)} by ${d.redriven_by ?? '?'} (partition ${d.redrive_partition}, offset ${d.redrive_offset})` : 'no'}</dd>
      </dl>
      <h3 className="mb-1 text-sm font-semibold">
        Payload ({d.preview_kind}, {formatBytes(d.payload_size)})
      </h3>
      <pre tabIndex={0} data-testid="dlq-payload" className="mb-3 max-h-96 overflow-auto rounded bg-slate-900 p-3 text-xs text-slate-100">
        {d.payload_preview}
      </pre>
      {result && (
        <p role="status" className="text-sm text-green-800" data-testid="redrive-result">
          Put back on {result.topic}[{result.partition}] at offset {result.offset}
          {result.replayed ? ' (it had been re-driven already)' : ''}.
        </p>
      )}
      {can('operator') && !d.redriven_at && !result && (
        <Redrive
          letter={d}
          onDone={(done) => {
            setResult(done)
            void detail.refetch()
            onChanged()
          }}
        />
      )}
    </Card>
  )
}

export default function DeadLetters() {
  const queryClient = useQueryClient()
  const [state, setState] = useState<'all' | 'pending' | 'redriven'>('all')
  const [q, setQ] = useState('')
  const [trail, setTrail] = useState<(string | null)[]>([null])
  const [selected, setSelected] = useState<string | null>(null)
  const cursor = trail[trail.length - 1] ?? null
  const letters = useQuery({
    queryKey: ['dead-letters', state, q, cursor],
    queryFn: ({ signal }) => getJson<DeadLetterPage>('/dlq', { state, q: q || undefined, cursor, limit: 25 }, signal),
    placeholderData: keepPreviousData,
    refetchInterval: 10_000,
  })
  const reset = () => setTrail([null])
  return (
    <div className="flex flex-col gap-4">
      <div>
        <h1 className="text-2xl font-semibold">Dead letters</h1>
        <p className="text-sm text-slate-600">
          Messages a part could not decode or handle, kept on the DLQ with why and where they came from. After fixing the cause, an operator can put one back on its topic.
        </p>
      </div>
      <div className="flex flex-wrap items-end gap-3">
        <div className="w-40">
          <Field label="State" htmlFor="dlq-state">
            <Select
              id="dlq-state"
              value={state}
              onChange={(e) => {
                setState(e.target.value as typeof state)
                reset()
              }}
            >
              <option value="all">all</option>
              <option value="pending">not re-driven</option>
              <option value="redriven">re-driven</option>
            </Select>
          </Field>
        </div>
        <div className="w-72">
          <Field label="Reason contains" htmlFor="dlq-q">
            <Input
              id="dlq-q"
              value={q}
              onChange={(e) => {
                setQ(e.target.value)
                reset()
              }}
            />
          </Field>
        </div>
      </div>
      {letters.isError && <ProblemAlert error={letters.error} />}
      {letters.isPending && <Loading />}
      {letters.data && (
        <Card>
          {letters.data.unattributed ? (
            <p className="mb-2 text-sm text-amber-900" data-testid="dlq-unattributed">
              {letters.data.unattributed} dead letter(s) belong to no known tenant (undecodable) and are not listed here.
            </p>
          ) : null}
          {letters.data.items.length === 0 ? (
            <p className="text-sm text-slate-600">No dead letters.</p>
          ) : (
            <Table caption="Dead letters, newest failure first" head={['Failed at', 'Reason', 'Source', 'Event', 'Payload', 'State', '']}>
              {letters.data.items.map((d) => (
                <tr key={d.letter_id} data-testid="dlq-row" className={selected === d.letter_id ? 'bg-indigo-50' : undefined}>
                  <Td>{formatTime(d.failed_at)}</Td>
                  <Td className="max-w-xs">
                    {d.reason}
                    <span className="block text-xs text-slate-600">{d.error_type}</span>
                  </Td>
                  <Td className="font-mono text-xs">
                    {d.source_topic}[{d.source_partition}] @ {d.source_offset}
                  </Td>
                  <Td className="text-xs">{d.event_type ?? '—'}</Td>
                  <Td className="max-w-xs truncate font-mono text-xs">
                    {d.preview_kind} · {formatBytes(d.payload_size)}
                  </Td>
                  <Td>{d.redriven_at ? <Badge tone="completed">re-driven</Badge> : <Badge tone="waiting_for_approval">pending</Badge>}</Td>
                  <Td>
                    <Button size="sm" onClick={() => setSelected(d.letter_id)} aria-label={`Open dead letter ${d.letter_id}`}>
                      Open
                    </Button>
                  </Td>
                </tr>
              ))}
            </Table>
          )}
          <div className="mt-3 flex gap-2">
            <Button size="sm" disabled={trail.length < 2} onClick={() => setTrail(trail.slice(0, -1))}>
              Previous
            </Button>
            <Button size="sm" disabled={!letters.data.next_cursor} onClick={() => setTrail([...trail, letters.data.next_cursor])}>
              Next
            </Button>
          </div>
        </Card>
      )}
      {selected && <Detail key={selected} letterId={selected} onChanged={() => void queryClient.invalidateQueries({ queryKey: ['dead-letters'] })} />}
    </div>
  )
}
