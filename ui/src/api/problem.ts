/** RFC 9457 problem details, as the gateway sends them, and how the UI words them. */

export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  [extension: string]: unknown
}

export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem
  /** Seconds from `Retry-After` (429, 503), when the gateway sent one. */
  readonly retryAfter: number | null

  constructor(problem: Problem, retryAfter: number | null = null) {
    super(problem.detail ?? problem.title)
    this.name = 'ApiError'
    this.status = problem.status
    this.problem = problem
    this.retryAfter = retryAfter
  }

  /** The problem's slug: `forbidden` for `urn:omium:problem:forbidden`. */
  get slug(): string {
    const type = this.problem.type
    const cut = Math.max(type.lastIndexOf(':'), type.lastIndexOf('/'))
    return cut >= 0 ? type.slice(cut + 1) : type
  }
}

/** A network failure or a body that is not a problem: still shown as one. */
export function networkProblem(message: string): ApiError {
  return new ApiError({
    type: 'about:blank',
    title: 'Cannot reach the gateway',
    status: 0,
    detail: message,
  })
}

export function isProblem(body: unknown): body is Problem {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as Problem).title === 'string' &&
    typeof (body as Problem).status === 'number'
  )
}

export interface ProblemMessage {
  title: string
  message: string
  /** Extra lines (validation errors, required role ...). */
  details: string[]
  /** What the user can do about it. */
  hint: string | null
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null
}

const UNAUTHENTICATED: Record<string, string> = {
  missing: 'No credential was sent.',
  invalid_token: 'The token is not valid for this gateway.',
  expired: 'The token has expired.',
  invalid_audience: 'The token was issued for another audience.',
  invalid_issuer: 'The token was issued by another identity provider.',
  missing_claim: 'The token lacks a required claim (sub, tenant_id, roles, exp or aud).',
  invalid_api_key: 'The API key is not known.',
  revoked: 'The API key has been revoked.',
  ambiguous: 'Both a token and an API key were sent.',
}

/** Clear words for an error: what happened, and what to do about it. */
export function describeError(error: unknown): ProblemMessage {
  if (!(error instanceof ApiError)) {
    const message = error instanceof Error ? error.message : String(error)
    return { title: 'Something went wrong', message, details: [], hint: null }
  }
  const p = error.problem
  const detail = str(p.detail) ?? p.title
  switch (error.status) {
    case 0:
      return {
        title: p.title,
        message: detail,
        details: [],
        hint: 'Check that the gateway is running, then retry.',
      }
    case 401: {
      const reason = str(p.reason)
      return {
        title: 'Not signed in',
        message: (reason && UNAUTHENTICATED[reason]) ?? detail,
        details: reason ? [`reason: ${reason}`] : [],
        hint: 'Sign in again with a valid token or API key.',
      }
    }
    case 403: {
      const required = str(p.required_role)
      const actual = str(p.actual_role)
      return {
        title: 'Not allowed',
        message:
          required && actual
            ? `Your role (${actual}) cannot do this: it needs ${required} or above.`
            : detail,
        details: [],
        hint: 'Ask an administrator for a role that allows it.',
      }
    }
    case 404:
      return {
        title: 'Not found',
        message: 'Nothing with this id exists in your tenant.',
        details: [detail],
        hint: null,
      }
    case 409: {
      const state = str(p.current_state)
      if (error.slug === 'invalid-transition' && state) {
        return {
          title: 'Not possible in this state',
          message: `The run is ${state.replaceAll('_', ' ')}: ${detail}`,
          details: [],
          hint: null,
        }
      }
      if (error.slug === 'conflict') {
        return {
          title: 'Changed meanwhile',
          message: 'Someone (or the workflow) changed this while you were looking.',
          details: [detail],
          hint: 'The page has been refreshed: check it, then try again.',
        }
      }
      return { title: p.title, message: detail, details: [], hint: null }
    }
    case 422: {
      const errors = Array.isArray(p.errors) ? (p.errors as unknown[]) : []
      const lines = errors.map((item) => {
        if (typeof item !== 'object' || item === null) return String(item)
        const { loc, msg } = item as { loc?: unknown; msg?: unknown }
        const where = Array.isArray(loc) ? loc.filter((part) => part !== 'body').join('.') : ''
        return where ? `${where}: ${String(msg)}` : String(msg)
      })
      return { title: p.title, message: detail, details: lines, hint: null }
    }
    case 429: {
      const wait = error.retryAfter ?? (typeof p.retry_after === 'number' ? p.retry_after : null)
      return {
        title: 'Too many requests',
        message: `Your tenant's rate limit is used up${wait !== null ? `; retry in ${Math.ceil(wait)} s` : ''}.`,
        details: [],
        hint: 'Wait a moment; pages refresh by themselves.',
      }
    }
    default:
      if (error.status >= 500) {
        const request = str(p.request_id)
        return {
          title: p.title,
          message: detail,
          details: request ? [`request id: ${request}`] : [],
          hint: 'This is not your fault; retry later.',
        }
      }
      return { title: p.title, message: detail, details: [], hint: null }
  }
}
