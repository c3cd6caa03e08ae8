import { useQuery } from '@tanstack/react-query'
import { useMemo, useState, type FormEvent } from 'react'
import { getJson } from '../api/client'
import type { AuditRecord, Page } from '../api/types'
import { Badge } from '../components/ui/Badge'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Input, Select } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import { download, toCsv } from '../lib/csv'
import { fromLocalInput, PageTrail } from '../lib/filters'
import { formatTime } from '../lib/format'

export const AUDIT_COLUMNS = [
  'occurred_at',
  'actor',
  'actor_kind',
  'roles',
  'command',
  'target',
  'result',
  'reason',
  'status_code',
  'request_id',
  'idempotency_key',
  'source_ip',
  'event_id',
] as const satisfies readonly (keyof AuditRecord)[]

/** At most this many records go into one export (10 pages of the API's largest page). */
const EXPORT_LIMIT = 5_000

interface Filters {
  actor: string
  command: string
  result: string
  target: string
  after: string
  before: string
}
const EMPTY: Filters = { actor: '', command: '', result: '', target: '', after: '', before: '' }

function toQuery(f: Filters): Record<string, string> {
  return {
    actor: f.actor.trim(),
    command: f.command.trim(),
    result: f.result,
    target: f.target.trim(),
    after: fromLocalInput(f.after) ?? '',
    before: fromLocalInput(f.before) ?? '',
  }
}

export default function Audit() {
  const [draft, setDraft] = useState<Filters>(EMPTY)
  const [filters, setFilters] = useState<Filters>(EMPTY)
  const [trail, setTrail] = useState(() => new PageTrail())
  const query = useMemo(() => toQuery(filters), [filters])
  const audit = useQuery({
    queryKey: ['audit', query, trail.current],
    queryFn: () => getJson<Page<AuditRecord>>('/audit', { ...query, limit: 100, cursor: trail.current }),
  })
  const [exporting, setExporting] = useState<string | null>(null)
  const [exportError, setExportError] = useState<unknown>(null)

  function search(event: FormEvent) {
    event.preventDefault()
    setTrail(new PageTrail())
    setFilters(draft)
  }

  async function exportAll(format: 'csv' | 'json') {
    setExporting(format)
    setExportError(null)
    try {
      const records: AuditRecord[] = []
      let cursor: string | null = null
      do {
        const page: Page<AuditRecord> = await getJson<Page<AuditRecord>>('/audit', { ...query, limit: 500, cursor })
        records.push(...page.items)
        cursor = page.next_cursor
      } while (cursor && records.length < EXPORT_LIMIT)
      const stamp = new Date().toISOString().replaceAll(':', '-').slice(0, 19)
      if (format === 'csv') download(`omium-audit-${stamp}.csv`, toCsv(records, AUDIT_COLUMNS), 'text/csv')
      else download(`omium-audit-${stamp}.json`, `${JSON.stringify({ filters: query, records }, null, 2)}\n`, 'application/json')
    } catch (error) {
      setExportError(error)
    } finally {
      setExporting(null)
    }
  }

  const field = (name: keyof Filters) => ({
    id: `a-${name}`,
    value: draft[name],
    onChange: (e: { target: { value: string } }) => setDraft({ ...draft, [name]: e.target.value }),
  })

  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Audit log</h1>
      <Card>
        <form onSubmit={search} className="grid gap-3 sm:grid-cols-3 lg:grid-cols-6">
          <Field label="Who (actor)" htmlFor="a-actor">
            <Input {...field('actor')} />
          </Field>
          <Field label="What (command)" htmlFor="a-command">
            <Input {...field('command')} placeholder="executions.cancel" />
          </Field>
          <Field label="Outcome" htmlFor="a-result">
            <Select {...field('result')}>
              <option value="">Any outcome</option>
              <option value="accepted">accepted</option>
              <option value="refused">refused</option>
              <option value="failed">failed</option>
            </Select>
          </Field>
          <Field label="Target" htmlFor="a-target">
            <Input {...field('target')} />
          </Field>
          <Field label="After" htmlFor="a-after">
            <Input type="datetime-local" {...field('after')} />
          </Field>
          <Field label="Before" htmlFor="a-before">
            <Input type="datetime-local" {...field('before')} />
          </Field>
          <div className="flex gap-2 sm:col-span-3 lg:col-span-6">
            <Button type="submit" variant="primary">
              Search
            </Button>
            <Button onClick={() => void exportAll('csv')} disabled={exporting !== null}>
              {exporting === 'csv' ? 'Exporting…' : 'Export CSV'}
            </Button>
            <Button onClick={() => void exportAll('json')} disabled={exporting !== null}>
              {exporting === 'json' ? 'Exporting…' : 'Export JSON'}
            </Button>
          </div>
        </form>
        {exportError !== null && <ProblemAlert error={exportError} />}
      </Card>
      <Card
        title={`Recorded commands — page ${trail.page}`}
        actions={
          <>
            <Button size="sm" disabled={!trail.hasPrevious} onClick={() => setTrail(trail.previous())}>
              Previous page
            </Button>
            <Button size="sm" disabled={!audit.data?.next_cursor} onClick={() => audit.data?.next_cursor && setTrail(trail.next(audit.data.next_cursor))}>
              Next page
            </Button>
          </>
        }
      >
        {audit.isPending && <Loading />}
        {audit.isError && <ProblemAlert error={audit.error} />}
        {audit.data && audit.data.items.length === 0 && <p className="text-sm text-slate-600">No recorded commands match.</p>}
        {audit.data && audit.data.items.length > 0 && (
          <Table caption="Recorded commands, newest first" head={['When', 'Who', 'Roles', 'What', 'Target', 'Outcome', 'Status', 'Reason']}>
            {audit.data.items.map((a) => (
              <tr key={a.event_id} data-testid="audit-row">
                <Td>{formatTime(a.occurred_at)}</Td>
                <Td>
                  {a.actor} <span className="text-xs text-slate-600">({a.actor_kind})</span>
                </Td>
                <Td>{a.roles.join(', ')}</Td>
                <Td className="font-mono text-xs">{a.command}</Td>
                <Td className="font-mono text-xs">{a.target ?? '—'}</Td>
                <Td>
                  <Badge>{a.result}</Badge>
                </Td>
                <Td>{a.status_code ?? '—'}</Td>
                <Td>{a.reason ?? ''}</Td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </div>
  )
}
