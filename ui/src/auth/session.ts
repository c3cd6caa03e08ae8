/**
 * The signed-in credential: kept in memory, and in this tab's sessionStorage when the user asks
 * (never in localStorage, a cookie or a URL). Other tabs and a closed tab forget it.
 */

export type CredentialKind = 'token' | 'apiKey'

export interface Credential {
  kind: CredentialKind
  value: string
}

const STORAGE_KEY = 'omium.credential'

let current: Credential | null = null
const listeners = new Set<() => void>()

/** An API key looks like `omk_<16 hex>_<secret>`; anything else is taken for a bearer token. */
export function credentialKind(value: string): CredentialKind {
  return /^omk_[0-9a-f]{16}_/.test(value.trim()) ? 'apiKey' : 'token'
}

export function credentialHeaders(credential: Credential | null): Record<string, string> {
  if (!credential) return {}
  return credential.kind === 'apiKey'
    ? { 'X-API-Key': credential.value }
    : { Authorization: `Bearer ${credential.value}` }
}

function storage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage
  } catch {
    return null
  }
}

export function loadCredential(): Credential | null {
  if (current) return current
  const raw = storage()?.getItem(STORAGE_KEY)
  if (!raw) return null
  try {
    const parsed: unknown = JSON.parse(raw)
    if (
      parsed &&
      typeof parsed === 'object' &&
      'kind' in parsed &&
      'value' in parsed &&
      (parsed.kind === 'token' || parsed.kind === 'apiKey') &&
      typeof parsed.value === 'string'
    ) {
      current = { kind: parsed.kind, value: parsed.value }
    }
  } catch {
    storage()?.removeItem(STORAGE_KEY)
  }
  return current
}

export function saveCredential(credential: Credential, remember: boolean): void {
  current = credential
  if (remember) storage()?.setItem(STORAGE_KEY, JSON.stringify(credential))
  else storage()?.removeItem(STORAGE_KEY)
  listeners.forEach((listener) => listener())
}

export function clearCredential(): void {
  current = null
  storage()?.removeItem(STORAGE_KEY)
  listeners.forEach((listener) => listener())
}

export function onCredentialChange(listener: () => void): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}
