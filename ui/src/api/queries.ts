/** TanStack Query hooks over the gateway's read routes. */

import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { getJson } from './client'
import type { Execution, ExecutionSummary, Page, Timeline, Workflow } from './types'

export const keys = {
  runs: (query: Record<string, string>, cursor: string | null) => ['runs', query, cursor] as const,
  run: (id: string) => ['run', id] as const,
  timeline: (id: string) => ['timeline', id] as const,
  workflows: ['workflows'] as const,
  workflow: (id: string, version?: number) => ['workflow', id, version ?? null] as const,
}

/** A page of the runs list (for `useRuns`, and to fetch it before the page is rendered). */
export function runsQuery(query: Record<string, string>, cursor: string | null) {
  return {
    queryKey: keys.runs(query, cursor),
    queryFn: ({ signal }: { signal: AbortSignal }) =>
      getJson<Page<ExecutionSummary>>('/executions', { ...query, limit: 50, cursor }, signal),
  }
}

/** The runs list; `live` when the tenant WebSocket refreshes it, else it polls every 3 s. */
export function useRuns(query: Record<string, string>, cursor: string | null, live = false) {
  return useQuery({
    ...runsQuery(query, cursor),
    placeholderData: keepPreviousData,
    refetchInterval: live ? false : 3_000,
  })
}

export function useRun(id: string) {
  return useQuery({
    queryKey: keys.run(id),
    queryFn: ({ signal }) => getJson<Execution>(`/executions/${encodeURIComponent(id)}`, undefined, signal),
  })
}

export function useTimeline(id: string, enabled: boolean) {
  return useQuery({
    queryKey: keys.timeline(id),
    queryFn: ({ signal }) =>
      getJson<Timeline>(`/executions/${encodeURIComponent(id)}/timeline`, { limit: 2000 }, signal),
    enabled,
    // Right after a start the read model may not know the run yet (404): ask again shortly.
    retry: (count) => count < 20,
    retryDelay: 500,
  })
}

export function useWorkflows() {
  return useQuery({
    queryKey: keys.workflows,
    queryFn: ({ signal }) => getJson<Workflow[]>('/workflows', undefined, signal),
    staleTime: 30_000,
  })
}

export function useWorkflow(id: string | null | undefined, version?: number) {
  return useQuery({
    queryKey: keys.workflow(id ?? '', version),
    queryFn: ({ signal }) =>
      getJson<Workflow>(
        `/workflows/${encodeURIComponent(id ?? '')}`,
        version ? { definition_version: version } : undefined,
        signal,
      ),
    enabled: Boolean(id),
    staleTime: 60_000,
  })
}
