import { useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { getJson, postJson } from '../../api/client'
import { useAuth } from '../../auth/AuthContext'
import { Badge } from '../ui/Badge'
import { Button } from '../ui/Button'
import { Card } from '../ui/Card'
import { ProblemAlert } from '../ui/ProblemAlert'
import { ActionDialog } from './ActionDialog'

interface Suggestion {
  suggestion_id: string
  failure_id: string | null
  step_id: string | null
  status: 'proposed' | 'approved' | 'rejected'
  diagnosis: { probable_cause?: string; confidence?: number; evidence?: { source?: string; quote?: string; verified?: boolean }[] }
  fix: { action?: string; step_id?: string; checkpoint_id?: string; agent?: string; model?: string; reason?: string }
  requested_by: string
  decided_by: string | null
  comment: string | null
}

interface SuggestionList {
  execution_id: string
  version: number
  suggestions: Suggestion[]
}

/** Root-cause suggestions for a run's failures, for a human to approve (and so apply) or reject. */
export function Suggestions({ executionId, hasFailure }: { executionId: string; hasFailure: boolean }) {
  const { can } = useAuth()
  const queryClient = useQueryClient()
  const list = useQuery({
    queryKey: ['suggestions', executionId],
    queryFn: () => getJson<SuggestionList>(`/executions/${executionId}/suggestions`),
    refetchInterval: (query) => (query.state.data?.suggestions.some((s) => s.status === 'proposed') ? 5_000 : false),
  })
  const [deciding, setDeciding] = useState<{ suggestion: Suggestion; approve: boolean } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [asking, setAsking] = useState(false)
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ['suggestions', executionId] })
    void queryClient.invalidateQueries({ queryKey: ['run', executionId] })
  }

  async function ask() {
    setAsking(true)
    setError(null)
    try {
      await postJson(`/executions/${executionId}/suggestions`, {})
      refresh()
    } catch (caught) {
      setError(caught)
    } finally {
      setAsking(false)
    }
  }

  const suggestions = list.data?.suggestions ?? []
  if (!hasFailure && suggestions.length === 0) return null
  return (
    <Card
      title="Recovery suggestions"
      id="suggestions"
      actions={
        can('developer') &&
        hasFailure && (
          <Button size="sm" onClick={() => void ask()} disabled={asking}>
            {asking ? 'Asking…' : 'Ask for a diagnosis'}
          </Button>
        )
      }
    >
      {list.isError && <ProblemAlert error={list.error} />}
      {error !== null && <ProblemAlert error={error} />}
      {list.data && suggestions.length === 0 && (
        <p className="text-sm text-slate-600">No suggestion yet: ask for a diagnosis of the failure.</p>
      )}
      <ul className="flex flex-col gap-2">
        {suggestions.map((s) => (
          <li key={s.suggestion_id} className="rounded border border-slate-200 p-3 text-sm" data-testid="suggestion">
            <p className="flex flex-wrap items-center gap-2">
              <Badge tone={s.status === 'proposed' ? 'waiting_for_approval' : s.status === 'approved' ? 'granted' : 'rejected'}>{s.status}</Badge>
              <span>
                fix: <strong>{s.fix.action ?? '?'}</strong>
                {s.fix.step_id ? ` step ${s.fix.step_id}` : ''}
                {s.fix.agent ? ` → ${s.fix.agent}` : ''}
                {s.fix.model ? ` (${s.fix.model})` : ''}
              </span>
              {typeof s.diagnosis.confidence === 'number' && (
                <span className="text-slate-600">confidence {Math.round(s.diagnosis.confidence * 100)}%</span>
              )}
              {s.decided_by && <span className="text-slate-600">decided by {s.decided_by}</span>}
            </p>
            {s.diagnosis.probable_cause && <p className="mt-1">{s.diagnosis.probable_cause}</p>}
            {(s.diagnosis.evidence ?? []).length > 0 && (
              <ul className="mt-1 list-inside list-disc text-xs text-slate-700">
                {(s.diagnosis.evidence ?? []).map((e, i) => (
                  <li key={i}>
                    {e.source}: “{e.quote}” {e.verified ? '(verified)' : '(not verified)'}
                  </li>
                ))}
              </ul>
            )}
            {s.status === 'proposed' && can('operator') && (
              <p className="mt-2 flex gap-2">
                <Button size="sm" variant="primary" onClick={() => setDeciding({ suggestion: s, approve: true })}>
                  Approve and apply
                </Button>
                <Button size="sm" variant="danger" onClick={() => setDeciding({ suggestion: s, approve: false })}>
                  Reject
                </Button>
              </p>
            )}
          </li>
        ))}
      </ul>
      <ActionDialog
        open={deciding !== null}
        title={deciding?.approve ? 'Approve this suggestion (its fix is applied)?' : 'Reject this suggestion?'}
        confirm={deciding?.approve ? 'Approve' : 'Reject'}
        danger={!deciding?.approve}
        reasonLabel="Comment"
        onClose={() => setDeciding(null)}
        onConfirm={async (comment) => {
          if (!deciding) return
          const verb = deciding.approve ? 'approve' : 'reject'
          try {
            await postJson(
              `/executions/${executionId}/suggestions/${encodeURIComponent(deciding.suggestion.suggestion_id)}/${verb}`,
              comment ? { comment } : {},
              list.data ? { ifMatch: list.data.version } : {},
            )
          } finally {
            refresh()
          }
        }}
      />
    </Card>
  )
}
