import { useState, type FormEvent } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { postJson } from '../api/client'
import { useWorkflow } from '../api/queries'
import { useAuth } from '../auth/AuthContext'
import { Dag } from '../components/Dag'
import { Button } from '../components/ui/Button'
import { Card } from '../components/ui/Card'
import { Field, Select, TextArea } from '../components/ui/Field'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { stepsOf } from '../lib/dag'
import { formatTime } from '../lib/format'
import { checkRunInput, missingInputKeys } from '../lib/input'
import { toYaml } from '../lib/yaml'

function Definition({ definition }: { definition: unknown }) {
  const [format, setFormat] = useState<'yaml' | 'json'>('yaml')
  const text = format === 'yaml' ? toYaml(definition) : JSON.stringify(definition, null, 2)
  return (
    <Card
      title="Definition"
      id="wf-definition"
      actions={
        <div role="group" aria-label="Definition format" className="flex gap-1">
          {(['yaml', 'json'] as const).map((f) => (
            <Button key={f} size="sm" variant={format === f ? 'primary' : 'secondary'} aria-pressed={format === f} onClick={() => setFormat(f)}>
              {f.toUpperCase()}
            </Button>
          ))}
        </div>
      }
    >
      <pre tabIndex={0} data-testid={`definition-${format}`} className="max-h-[40rem] overflow-auto rounded bg-slate-900 p-3 text-xs text-slate-100">
        {text}
      </pre>
    </Card>
  )
}

function StartRun({ workflowId, version, definition }: { workflowId: string; version: number; definition: unknown }) {
  const navigate = useNavigate()
  const [input, setInput] = useState('{}')
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const check = checkRunInput(input)
  const missing = check.ok ? missingInputKeys(definition, check.value) : []

  async function submit(event: FormEvent) {
    event.preventDefault()
    if (!check.ok) return
    setBusy(true)
    setError(null)
    try {
      const started = await postJson<{ execution_id: string }>('/executions', {
        workflow_id: workflowId,
        workflow_version: version,
        input: check.value,
      })
      navigate(`/runs/${started.execution_id}`)
    } catch (caught) {
      setError(caught)
      setBusy(false)
    }
  }

  return (
    <Card title={`Start a run of v${version}`} id="start">
      <form onSubmit={submit} className="flex flex-col gap-3">
        <Field label="Input (JSON object)" htmlFor="run-input" hint={check.ok ? (missing.length ? `The steps read input.${missing.join(', input.')}, which this input lacks.` : 'Checked: a JSON object.') : undefined}>
          <TextArea
            id="run-input"
            rows={6}
            spellCheck={false}
            value={input}
            aria-invalid={!check.ok}
            aria-describedby={check.ok ? undefined : 'run-input-error'}
            onChange={(e) => setInput(e.target.value)}
          />
        </Field>
        {!check.ok && (
          <p id="run-input-error" className="text-sm text-red-800">
            {check.error}
          </p>
        )}
        {error !== null && <ProblemAlert error={error} />}
        <div>
          <Button type="submit" variant="primary" disabled={busy || !check.ok}>
            {busy ? 'Starting…' : 'Start run'}
          </Button>
        </div>
      </form>
    </Card>
  )
}

export default function WorkflowPage() {
  const { workflowId = '' } = useParams()
  const { can } = useAuth()
  const [version, setVersion] = useState<number | undefined>(undefined)
  const workflow = useWorkflow(workflowId, version)
  if (workflow.isPending) return <Loading />
  if (workflow.isError) return <ProblemAlert error={workflow.error} />
  const w = workflow.data
  const versions = Array.from({ length: w.latest_version }, (_, i) => w.latest_version - i)
  return (
    <div className="flex flex-col gap-4">
      <div>
        <p className="text-sm text-slate-600">
          <Link className="underline" to="/workflows">
            Workflows
          </Link>{' '}
          / workflow
        </p>
        <h1 className="text-2xl font-semibold">{w.name}</h1>
        <p className="text-sm text-slate-600">
          registered {formatTime(w.registered_at)} · id <span className="font-mono">{w.workflow_id}</span> ·{' '}
          <Link className="text-indigo-700 underline" to={`/runs?workflow=${w.workflow_id}`}>
            its runs
          </Link>
        </p>
      </div>
      <div className="max-w-xs">
        <Field label="Version" htmlFor="wf-version">
          <Select id="wf-version" value={w.definition_version} onChange={(e) => setVersion(Number(e.target.value))}>
            {versions.map((v) => (
              <option key={v} value={v}>
                v{v}
                {v === w.latest_version ? ' (latest)' : ''}
              </option>
            ))}
          </Select>
        </Field>
      </div>
      <div className="grid items-start gap-4 xl:grid-cols-2">
        <Card title="Steps" id="wf-dag">
          <Dag steps={stepsOf(w.definition)} status={{}} />
        </Card>
        <Definition definition={w.definition} />
      </div>
      {can('developer') && <StartRun workflowId={w.workflow_id} version={w.definition_version} definition={w.definition} />}
    </div>
  )
}
