/** Checking a run's JSON input before it is sent (the API wants a plain JSON object). */

export type InputCheck = { ok: true; value: Record<string, unknown> } | { ok: false; error: string }

const MAX_BYTES = 1024 * 1024

export function checkRunInput(text: string): InputCheck {
  const trimmed = text.trim()
  if (!trimmed) return { ok: true, value: {} }
  if (new TextEncoder().encode(trimmed).length > MAX_BYTES) {
    return { ok: false, error: 'The input is larger than the gateway accepts (1 MiB).' }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(trimmed)
  } catch (error) {
    return { ok: false, error: `Not valid JSON: ${error instanceof Error ? error.message : String(error)}` }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, error: 'The input must be a JSON object ({"key": value, …}).' }
  }
  return { ok: true, value: parsed as Record<string, unknown> }
}

/** The input keys the definition's steps read as `{{ input.<key> }}` and the input lacks. */
export function missingInputKeys(definition: unknown, input: Record<string, unknown>): string[] {
  const text = JSON.stringify(definition ?? {})
  const wanted = new Set<string>()
  for (const match of text.matchAll(/\{\{\s*input\.([A-Za-z_][\w]*)/g)) if (match[1]) wanted.add(match[1])
  return [...wanted].filter((key) => !(key in input)).sort()
}
