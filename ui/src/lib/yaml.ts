/**
 * A workflow definition (JSON, as the gateway stores it) written as YAML, the format workflows
 * are authored in. Block style, keys in their stored order; a string stays plain only when YAML
 * would read it back as the same string, else it is double-quoted (JSON escapes are valid YAML);
 * multi-line text becomes a literal block.
 */

const PLAIN = /^[A-Za-z_./$][A-Za-z0-9_./$@() -]*$/
const RESERVED = /^(?:true|false|yes|no|on|off|null|y|n|~)$/i

function scalar(value: string | number | boolean | null): string {
  if (value === null) return 'null'
  if (typeof value !== 'string') return String(value)
  if (PLAIN.test(value) && !RESERVED.test(value) && !value.endsWith(' ') && !value.includes(' #')) {
    return value
  }
  return JSON.stringify(value)
}

function isBlockText(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.includes('\n') &&
    !/^\s/.test(value) &&
    value.split('\n').every((line) => !/\s$/.test(line) && !line.includes('\t'))
  )
}

function block(text: string, indent: string): string {
  const chomp = text.endsWith('\n') ? '|' : '|-'
  const body = text.endsWith('\n') ? text.slice(0, -1) : text
  return `${chomp}\n${body
    .split('\n')
    .map((line) => (line ? indent + line : ''))
    .join('\n')}`
}

function isEmpty(value: unknown): boolean {
  return Array.isArray(value) ? value.length === 0 : typeof value === 'object' && value !== null && Object.keys(value).length === 0
}

function emit(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (typeof item === 'object' && item !== null && !isEmpty(item)) {
        const [first = '', ...rest] = emit(item, indent + '  ')
        return [`${indent}- ${first.trimStart()}`, ...rest]
      }
      return [`${indent}- ${inline(item, indent + '  ')}`]
    })
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => {
      const name = scalar(key)
      if (typeof item === 'object' && item !== null && !isEmpty(item)) {
        return [`${indent}${name}:`, ...emit(item, Array.isArray(item) ? indent : indent + '  ')]
      }
      return [`${indent}${name}: ${inline(item, indent + '  ')}`]
    })
  }
  return [indent + inline(value, indent)]
}

function inline(value: unknown, indent: string): string {
  if (Array.isArray(value)) return '[]'
  if (typeof value === 'object' && value !== null) return '{}'
  if (isBlockText(value)) return block(value, indent)
  if (value === undefined) return 'null'
  return scalar(value as string | number | boolean | null)
}

/** The document as YAML (ending in a newline). */
export function toYaml(value: unknown): string {
  return emit(value, '').join('\n') + '\n'
}
