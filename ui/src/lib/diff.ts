/** A structural diff of two JSON values (two checkpoints' states). */

export type Change =
  | { kind: 'added'; path: string; after: unknown }
  | { kind: 'removed'; path: string; before: unknown }
  | { kind: 'changed'; path: string; before: unknown; after: unknown }

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`
}

/** Every difference from `before` to `after`, depth first, keys in sorted order. */
export function diffJson(before: unknown, after: unknown, path = ''): Change[] {
  if (Object.is(before, after)) return []
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    return keys.flatMap((key) => {
      const p = join(path, key)
      if (!(key in after)) return [{ kind: 'removed', path: p, before: before[key] } as Change]
      if (!(key in before)) return [{ kind: 'added', path: p, after: after[key] } as Change]
      return diffJson(before[key], after[key], p)
    })
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const changes: Change[] = []
    const common = Math.min(before.length, after.length)
    for (let i = 0; i < common; i++) changes.push(...diffJson(before[i], after[i], join(path, i)))
    for (let i = common; i < after.length; i++) changes.push({ kind: 'added', path: join(path, i), after: after[i] })
    for (let i = common; i < before.length; i++) changes.push({ kind: 'removed', path: join(path, i), before: before[i] })
    return changes
  }
  return [{ kind: 'changed', path: path || '(root)', before, after }]
}

export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64)
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

export interface DecodedState {
  /** The parsed JSON, or undefined when the state is not JSON. */
  json: unknown
  /** The UTF-8 text, or null for binary state. */
  text: string | null
  bytes: number
}

/** A checkpoint's state: JSON when it is JSON (UTF-8), else text, else just its size. */
export function decodeState(bytes: Uint8Array): DecodedState {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return { json: undefined, text: null, bytes: bytes.length }
  }
  try {
    return { json: JSON.parse(text) as unknown, text, bytes: bytes.length }
  } catch {
    return { json: undefined, text, bytes: bytes.length }
  }
}
