/** The gateway's HTTP API, same origin, with the signed-in credential in a header. */

import { credentialHeaders, loadCredential } from '../auth/session'
import { ApiError, isProblem, networkProblem, type Problem } from './problem'

export const API = '/api/v1'

export type Query = Record<string, string | number | boolean | null | undefined | string[]>

export function withQuery(path: string, query?: Query): string {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === '') continue
    if (Array.isArray(value)) value.forEach((item) => params.append(name, item))
    else params.append(name, String(value))
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

/** Listeners told about every 401, so the app can send the user back to sign-in. */
const unauthenticatedListeners = new Set<(error: ApiError) => void>()
export function onUnauthenticated(listener: (error: ApiError) => void): () => void {
  unauthenticatedListeners.add(listener)
  return () => unauthenticatedListeners.delete(listener)
}

export interface RequestOptions {
  method?: string
  body?: unknown
  query?: Query
  /** `If-Match`: the aggregate version the user saw (refused with 409 when stale). */
  ifMatch?: number
  idempotencyKey?: string
  signal?: AbortSignal
  accept?: string
  headers?: Record<string, string>
}

export async function errorOf(response: Response): Promise<ApiError> {
  let body: unknown = null
  try {
    body = await response.json()
  } catch {
    body = null
  }
  const retry = response.headers.get('Retry-After')
  const problem: Problem = isProblem(body)
    ? body
    : { type: 'about:blank', title: response.statusText || 'Error', status: response.status }
  const error = new ApiError(problem, retry !== null && retry !== '' ? Number(retry) : null)
  if (response.status === 401) unauthenticatedListeners.forEach((listener) => listener(error))
  return error
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {
    Accept: options.accept ?? 'application/json',
    ...options.headers,
    ...credentialHeaders(loadCredential()),
  }
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  if (options.ifMatch !== undefined) headers['If-Match'] = `"${options.ifMatch}"`
  if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey
  let response: Response
  try {
    response = await fetch(withQuery(API + path, options.query), {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      signal: options.signal ?? null,
      credentials: 'omit',
      cache: 'no-store',
    })
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error
    throw networkProblem(error instanceof Error ? error.message : String(error))
  }
  if (!response.ok) throw await errorOf(response)
  return response
}

export async function getJson<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  const response = await request(path, { query, ...(signal ? { signal } : {}) })
  return (await response.json()) as T
}

export async function postJson<T>(
  path: string,
  body: unknown,
  options: Omit<RequestOptions, 'method' | 'body'> = {},
): Promise<T> {
  const response = await request(path, {
    ...options,
    method: 'POST',
    body,
    idempotencyKey: options.idempotencyKey ?? crypto.randomUUID(),
  })
  return (await response.json()) as T
}
