import { describe, expect, it } from 'vitest'
import { toYaml } from './yaml'

describe('toYaml', () => {
  it('writes a workflow definition in block style, keys in order', () => {
    const definition = {
      name: 'research-report',
      version: 2,
      agents: { plan: { entrypoint: 'agents.plan:run', model: 'gpt-4o-mini' } },
      steps: [
        { id: 'plan', agent: 'plan', needs: [] },
        { id: 'write', agent: 'plan', needs: ['plan'], checkpoint: { before: true, after: false } },
      ],
      policies: { budget: { max_cost_usd: 0.25, max_tokens: 20000, on_exceed: 'halt' } },
      description: null,
    }
    expect(toYaml(definition)).toBe(
      [
        'name: research-report',
        'version: 2',
        'agents:',
        '  plan:',
        '    entrypoint: "agents.plan:run"',
        '    model: gpt-4o-mini',
        'steps:',
        '- id: plan',
        '  agent: plan',
        '  needs: []',
        '- id: write',
        '  agent: plan',
        '  needs:',
        '  - plan',
        '  checkpoint:',
        '    before: true',
        '    after: false',
        'policies:',
        '  budget:',
        '    max_cost_usd: 0.25',
        '    max_tokens: 20000',
        '    on_exceed: halt',
        'description: null',
        '',
      ].join('\n'),
    )
  })

  it('quotes strings YAML would read as something else', () => {
    const yaml = toYaml({ a: 'true', b: '42', c: '', d: 'x: y', e: 'no', f: ' lead', g: 'a #b', h: '-x', i: 'plain text' })
    expect(yaml).toBe(
      ['a: "true"', 'b: "42"', 'c: ""', 'd: "x: y"', 'e: "no"', 'f: " lead"', 'g: "a #b"', 'h: "-x"', 'i: plain text', ''].join('\n'),
    )
  })

  it('writes multi-line text as a literal block, and odd text quoted', () => {
    expect(toYaml({ prompt: 'line one\nline two\n' })).toBe('prompt: |\n  line one\n  line two\n')
    expect(toYaml({ prompt: 'one\n\ntwo' })).toBe('prompt: |-\n  one\n\n  two\n')
    expect(toYaml({ prompt: 'tab\there\nx' })).toBe('prompt: "tab\\there\\nx"\n')
    expect(toYaml({ steps: [{ when: 'a\nb' }] })).toBe('steps:\n- when: |-\n    a\n    b\n')
  })

  it('writes lists of lists and empty objects', () => {
    expect(toYaml({ m: [[1, 2], [], {}] })).toBe('m:\n- - 1\n  - 2\n- []\n- {}\n')
  })
})
