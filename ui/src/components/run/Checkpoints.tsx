import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { useNavigate } from 'react-router'
import { getJson, postJson, request } from '../../api/client'
import { useAuth } from '../../auth/AuthContext'
import { ActionDialog } from './ActionDialog'
import type { Checkpoint } from '../../api/types'
import { base64ToBytes, decodeState, diffJson, type DecodedState } from '../../lib/diff'
import { formatBytes } from '../../lib/format'
import { Button } from '../ui/Button'
import { Card } from '../ui/Card'
import { ProblemAlert } from '../ui/ProblemAlert'
import { Loading } from '../ui/Spinner'
import { Table, Td } from '../ui/Table'

async function loadState(executionId: string, checkpoint: Checkpoint): Promise<DecodedState> {
  const base = `/executions/${executionId}/checkpoints/${encodeURIComponent(checkpoint.checkpoint_id)}`
  if (checkpoint.storage === 'inline') {
    const full = await getJson<Checkpoint>(base)
    return decodeState(full.inline_state ? base64ToBytes(full.inline_state) : new Uint8Array())
  }
  // Object storage: the read model fetches the blob and checks its checksum before sending it.
  const response = await request(`${base}/state`, { accept: 'application/octet-stream' })
  return decodeState(new Uint8Array(await response.arrayBuffer()))
}

function useState_(executionId: string, checkpoint: Checkpoint | undefined) {
  return useQuery({
    queryKey: ['checkpoint-state', executionId, checkpoint?.checkpoint_id],
    queryFn: () => loadState(executionId, checkpoint as Checkpoint),
    enabled: Boolean(checkpoint),
    staleTime: Infinity,
  })
}

function show(value: unknown): string {
  return value === undefined ? '' : JSON.stringify(value)
}

function StateView({ state }: { state: DecodedState }) {
  if (state.json !== undefined) {
    return (
      <pre tabIndex={0} className="max-h-96 overflow-auto rounded bg-slate-900 p-3 text-xs text-slate-100" data-testid="checkpoint-state">
        {JSON.stringify(state.json, null, 2)}
      </pre>
    )
  }
  if (state.text !== null) return <pre tabIndex={0} className="max-h-96 overflow-auto rounded bg-slate-100 p-3 text-xs">{state.text}</pre>
  return <p className="text-sm text-slate-600">Binary state ({formatBytes(state.bytes)}).</p>
}

export function Checkpoints({ executionId, checkpoints }: { executionId: string; checkpoints: Checkpoint[] }) {
  const ordered = [...checkpoints].sort((a, b) => a.sequence - b.sequence)
  const { can } = useAuth()
  const navigate = useNavigate()
  const [forking, setForking] = useState<Checkpoint | null>(null)
  const [viewing, setViewing] = useState<string | null>(null)
  const [picked, setPicked] = useState<string[]>([])
  const viewed = ordered.find((c) => c.checkpoint_id === viewing)
  const state = useState_(executionId, viewed)
  const [left, right] = picked.map((id) => ordered.find((c) => c.checkpoint_id === id))
  const a = useState_(executionId, picked.length === 2 ? left : undefined)
  const b = useState_(executionId, picked.length === 2 ? right : undefined)

  function toggle(id: string) {
    setPicked((current) =>
      current.includes(id) ? current.filter((x) => x !== id) : [...current, id].slice(-2),
    )
  }

  const diff = a.data && b.data && a.data.json !== undefined && b.data.json !== undefined ? diffJson(a.data.json, b.data.json) : null

  return (
    <Card title={`Checkpoints (${ordered.length})`} id="checkpoints">
      {ordered.length === 0 ? (
        <p className="text-sm text-slate-600">No checkpoints yet.</p>
      ) : (
        <Table caption="Checkpoints in the order they were taken" head={['Compare', 'Step', 'Position', 'Size', 'Storage', 'Checksum', '']}>
          {ordered.map((c) => (
            <tr key={c.checkpoint_id} data-testid="checkpoint-row">
              <Td>
                <input
                  type="checkbox"
                  aria-label={`Compare checkpoint ${c.position} ${c.step_id}`}
                  checked={picked.includes(c.checkpoint_id)}
                  onChange={() => toggle(c.checkpoint_id)}
                />
              </Td>
              <Td className="font-mono">{c.step_id}</Td>
              <Td>{c.position}</Td>
              <Td>{formatBytes(c.size)}</Td>
              <Td>{c.storage}</Td>
              <Td className="font-mono text-xs" >
                <span title={c.checksum}>{c.checksum.slice(0, 12)}…</span>
              </Td>
              <Td>
                <span className="flex gap-1">
                  <Button size="sm" onClick={() => setViewing(viewing === c.checkpoint_id ? null : c.checkpoint_id)}>
                    {viewing === c.checkpoint_id ? 'Hide state' : 'View state'}
                  </Button>
                  {can('operator') && (
                    <Button size="sm" onClick={() => setForking(c)}>
                      Resume from here
                    </Button>
                  )}
                </span>
              </Td>
            </tr>
          ))}
        </Table>
      )}
      {viewed && (
        <div className="mt-3">
          <h3 className="mb-1 text-sm font-semibold">
            State at {viewed.position} {viewed.step_id}
          </h3>
          {state.isPending && <Loading />}
          {state.isError && <ProblemAlert error={state.error} />}
          {state.data && <StateView state={state.data} />}
        </div>
      )}
      {picked.length === 1 && <p className="mt-3 text-sm text-slate-600">Pick one more checkpoint to compare.</p>}
      {picked.length === 2 && left && right && (
        <div className="mt-3" data-testid="checkpoint-diff">
          <h3 className="mb-1 text-sm font-semibold">
            From {left.position} {left.step_id} to {right.position} {right.step_id}
          </h3>
          {(a.isPending || b.isPending) && <Loading />}
          {a.isError && <ProblemAlert error={a.error} />}
          {b.isError && <ProblemAlert error={b.error} />}
          {a.data && b.data && diff === null && <p className="text-sm">These states are not JSON; they cannot be compared field by field.</p>}
          {diff && diff.length === 0 && <p className="text-sm">The two states are identical.</p>}
          {diff && diff.length > 0 && (
            <Table caption="Differences between the two checkpoints" head={['Path', 'Change', 'Before', 'After']}>
              {diff.map((change) => (
                <tr key={`${change.kind}:${change.path}`} data-testid="diff-row">
                  <Td className="font-mono">{change.path}</Td>
                  <Td>{change.kind}</Td>
                  <Td className="font-mono text-xs text-red-800">{change.kind === 'added' ? '' : show(change.before)}</Td>
                  <Td className="font-mono text-xs text-green-800">{change.kind === 'removed' ? '' : show(change.after)}</Td>
                </tr>
              ))}
            </Table>
          )}
        </div>
      )}
      <ActionDialog
        open={forking !== null}
        title="Resume from this checkpoint as a new run (fork)"
        confirm="Start the fork"
        withReason={false}
        onClose={() => setForking(null)}
        onConfirm={async () => {
          if (!forking) return
          const fork = await postJson<{ execution_id: string }>(`/executions/${executionId}/fork`, {
            checkpoint_id: forking.checkpoint_id,
          })
          navigate(`/runs/${fork.execution_id}`)
        }}
      >
        <p className="text-sm">
          A new run starts where this one was at {forking?.position} {forking?.step_id}: completed steps keep their
          output, the others run again. This run is left as it is.
        </p>
      </ActionDialog>
    </Card>
  )
}
