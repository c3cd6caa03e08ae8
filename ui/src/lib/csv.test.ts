import { describe, expect, it } from 'vitest'
import { toCsv } from './csv'

describe('toCsv', () => {
  it('quotes what needs quoting and defuses formulas', () => {
    const rows = [{ actor: 'a,b', command: '=HYPERLINK("x")', roles: ['viewer', 'admin'], n: null }]
    expect(toCsv(rows, ['actor', 'command', 'roles', 'n'])).toBe(
      'actor,command,roles,n\r\n"a,b","\'=HYPERLINK(""x"")",viewer admin,\r\n',
    )
  })
})
