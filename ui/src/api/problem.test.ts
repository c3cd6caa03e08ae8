import { describe, expect, it } from 'vitest'
import { ApiError, describeError } from './problem'

const problem = (status: number, slug: string, extra: Record<string, unknown> = {}) =>
  new ApiError({ type: `urn:omium:problem:${slug}`, title: slug, status, detail: `detail ${slug}`, ...extra })

describe('describeError', () => {
  it('says which role an action needs', () => {
    const message = describeError(problem(403, 'forbidden', { required_role: 'operator', actual_role: 'viewer' }))
    expect(message.title).toBe('Not allowed')
    expect(message.message).toBe('Your role (viewer) cannot do this: it needs operator or above.')
  })

  it('explains why a credential was refused', () => {
    expect(describeError(problem(401, 'unauthenticated', { reason: 'expired' })).message).toBe('The token has expired.')
  })

  it('says when to retry after a rate limit', () => {
    const limited = new ApiError({ type: 'urn:omium:problem:rate-limited', title: 'Too many', status: 429 }, 3)
    expect(describeError(limited).message).toContain('retry in 3 s')
  })

  it('never says more than "not found" about another tenant', () => {
    expect(describeError(problem(404, 'not-found')).message).toBe('Nothing with this id exists in your tenant.')
  })

  it('lists validation errors by field', () => {
    const invalid = problem(422, 'validation-error', { errors: [{ loc: ['body', 'input'], msg: 'must be an object' }] })
    expect(describeError(invalid).details).toEqual(['input: must be an object'])
  })

  it('names the state that refused a command', () => {
    expect(describeError(problem(409, 'invalid-transition', { current_state: 'waiting_for_approval' })).message).toContain('waiting for approval')
    expect(problem(409, 'conflict').slug).toBe('conflict')
  })
})
