/** The runs list's filters: read from and written to the page's URL (never a credential). */

import { RUN_STATES, type RunState } from '../api/types'

export interface RunFilters {
  status: RunState | null
  workflowId: string | null
  /** ISO instants (with a timezone), as the API wants them. */
  startedAfter: string | null
  startedBefore: string | null
}

export const NO_FILTERS: RunFilters = {
  status: null,
  workflowId: null,
  startedAfter: null,
  startedBefore: null,
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function instant(value: string | null): string | null {
  if (!value) return null
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? null : date.toISOString()
}

/** Filters from a URL's query; anything malformed is dropped rather than sent to the API. */
export function parseRunFilters(params: URLSearchParams): RunFilters {
  const status = params.get('status')
  const workflow = params.get('workflow')?.trim() ?? null
  return {
    status: status && (RUN_STATES as readonly string[]).includes(status) ? (status as RunState) : null,
    workflowId: workflow && UUID.test(workflow) ? workflow.toLowerCase() : null,
    startedAfter: instant(params.get('after')),
    startedBefore: instant(params.get('before')),
  }
}

/** The URL query for filters (empty ones left out). */
export function runFiltersToParams(filters: RunFilters): URLSearchParams {
  const params = new URLSearchParams()
  if (filters.status) params.set('status', filters.status)
  if (filters.workflowId) params.set('workflow', filters.workflowId)
  if (filters.startedAfter) params.set('after', filters.startedAfter)
  if (filters.startedBefore) params.set('before', filters.startedBefore)
  return params
}

/** The API's query parameters for `GET /executions`. */
export function runFiltersToQuery(filters: RunFilters): Record<string, string> {
  const query: Record<string, string> = {}
  if (filters.status) query.status = filters.status
  if (filters.workflowId) query.workflow_id = filters.workflowId
  if (filters.startedAfter) query.started_after = filters.startedAfter
  if (filters.startedBefore) query.started_before = filters.startedBefore
  return query
}

/** `<input type="datetime-local">` value (local time) for an ISO instant, and back. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return ''
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000)
  return shifted.toISOString().slice(0, 16)
}

export function fromLocalInput(value: string): string | null {
  return value ? instant(value) : null
}

/** Cursor-paged navigation: the cursors of the pages before the current one. */
export class PageTrail {
  readonly cursors: (string | null)[]

  constructor(cursors: (string | null)[] = [null]) {
    this.cursors = cursors.length ? cursors : [null]
  }

  get current(): string | null {
    return this.cursors[this.cursors.length - 1] ?? null
  }

  get page(): number {
    return this.cursors.length
  }

  get hasPrevious(): boolean {
    return this.cursors.length > 1
  }

  next(cursor: string): PageTrail {
    return new PageTrail([...this.cursors, cursor])
  }

  previous(): PageTrail {
    return this.hasPrevious ? new PageTrail(this.cursors.slice(0, -1)) : this
  }
}
