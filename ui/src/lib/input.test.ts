import { describe, expect, it } from 'vitest'
import { dagEdges } from './dag'
import { checkRunInput, missingInputKeys } from './input'

describe('checkRunInput', () => {
  it('accepts a JSON object (empty means {})', () => {
    expect(checkRunInput('')).toEqual({ ok: true, value: {} })
    expect(checkRunInput(' {"a": 1} ')).toEqual({ ok: true, value: { a: 1 } })
  })

  it('refuses what is not a JSON object, saying why', () => {
    expect(checkRunInput('{"a": 1').ok).toBe(false)
    expect(checkRunInput('[1]')).toEqual({ ok: false, error: 'The input must be a JSON object ({"key": value, …}).' })
    expect(checkRunInput('null').ok).toBe(false)
  })

  it('names the input keys the steps read and the input lacks', () => {
    const definition = { steps: [{ id: 's', input: { topic: '{{ input.topic }}', who: '{{input.requested_by}}' } }] }
    expect(missingInputKeys(definition, { topic: 'x' })).toEqual(['requested_by'])
  })
})

describe('dagEdges', () => {
  it('chains steps without needs in list order', () => {
    expect(dagEdges([{ id: 'a' }, { id: 'b' }, { id: 'c' }])).toEqual([
      { from: 'a', to: 'b' },
      { from: 'b', to: 'c' },
    ])
  })

  it('follows needs, ignoring unknown steps', () => {
    expect(dagEdges([{ id: 'a', needs: [] }, { id: 'b', needs: ['a', 'zzz'] }, { id: 'c', needs: ['a'] }])).toEqual([
      { from: 'a', to: 'b' },
      { from: 'a', to: 'c' },
    ])
  })
})
