import { describe, expect, it } from 'vitest'
import { base64ToBytes, decodeState, diffJson } from './diff'

describe('diffJson', () => {
  it('finds nothing between equal values', () => {
    expect(diffJson({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toEqual([])
  })

  it('names added, removed and changed paths, depth first in key order', () => {
    const before = { seen: ['plan'], note: 'x', gone: 1, nested: { n: 1 } }
    const after = { seen: ['plan', 'act'], note: 'y', nested: { n: 2, m: true } }
    expect(diffJson(before, after)).toEqual([
      { kind: 'removed', path: 'gone', before: 1 },
      { kind: 'added', path: 'nested.m', after: true },
      { kind: 'changed', path: 'nested.n', before: 1, after: 2 },
      { kind: 'changed', path: 'note', before: 'x', after: 'y' },
      { kind: 'added', path: 'seen[1]', after: 'act' },
    ])
  })

  it('quotes keys that are not identifiers and compares types', () => {
    expect(diffJson({ 'a b': 1 }, { 'a b': '1' })).toEqual([{ kind: 'changed', path: '["a b"]', before: 1, after: '1' }])
    expect(diffJson([1], { 0: 1 })).toEqual([{ kind: 'changed', path: '(root)', before: [1], after: { 0: 1 } }])
  })
})

describe('decodeState', () => {
  it('parses JSON state, keeps text, and sizes binary', () => {
    expect(decodeState(base64ToBytes(btoa('{"a":1}'))).json).toEqual({ a: 1 })
    const text = decodeState(new TextEncoder().encode('hello'))
    expect(text.json).toBeUndefined()
    expect(text.text).toBe('hello')
    const binary = decodeState(new Uint8Array([0xff, 0xfe, 0x00]))
    expect(binary).toEqual({ json: undefined, text: null, bytes: 3 })
  })
})
