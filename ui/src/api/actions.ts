/** Commands on a run, each sent with the version the user saw (If-Match) and a fresh key. */

import { useQueryClient } from '@tanstack/react-query'
import { useCallback } from 'react'
import { postJson } from './client'
import { ApiError } from './problem'
import { keys } from './queries'
import type { Accepted, Execution } from './types'

export type RunCommand =
  | { kind: 'cancel'; reason: string }
  | { kind: 'halt'; reason: string }
  | { kind: 'rollback'; checkpointId: string; reason: string }
  | { kind: 'grant'; stepId: string; comment: string }
  | { kind: 'reject'; stepId: string; comment: string }

function route(run: Execution, command: RunCommand): [string, Record<string, unknown>] {
  const base = `/executions/${run.execution_id}`
  const optional = (name: string, value: string) => (value ? { [name]: value } : {})
  switch (command.kind) {
    case 'cancel':
      return [`${base}/cancel`, optional('reason', command.reason)]
    case 'halt':
      return [`${base}/halt`, { reason: command.reason }]
    case 'rollback':
      return [`${base}/rollback`, { checkpoint_id: command.checkpointId, ...optional('reason', command.reason) }]
    case 'grant':
      return [`${base}/steps/${encodeURIComponent(command.stepId)}/approval/grant`, optional('comment', command.comment)]
    case 'reject':
      return [`${base}/steps/${encodeURIComponent(command.stepId)}/approval/reject`, optional('comment', command.comment)]
  }
}

/** Sends a command; refreshes the run afterwards (also after a refusal: the view was stale). */
export function useRunCommand(run: Execution | undefined) {
  const queryClient = useQueryClient()
  return useCallback(
    async (command: RunCommand): Promise<Accepted> => {
      if (!run) throw new Error('the run is not loaded')
      const [path, body] = route(run, command)
      try {
        return await postJson<Accepted>(path, body, { ifMatch: run.version })
      } catch (error) {
        if (error instanceof ApiError && error.status === 409) {
          await queryClient.invalidateQueries({ queryKey: keys.run(run.execution_id) })
        }
        throw error
      } finally {
        void queryClient.invalidateQueries({ queryKey: keys.run(run.execution_id) })
        void queryClient.invalidateQueries({ queryKey: keys.timeline(run.execution_id) })
        void queryClient.invalidateQueries({ queryKey: ['runs'] })
      }
    },
    [run, queryClient],
  )
}
