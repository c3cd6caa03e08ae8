/**
 * The tenant's events over the gateway's WebSocket (`/api/v1/events/ws`).
 *
 * Browsers cannot set headers on a WebSocket and the credential never goes in a URL, so it
 * travels in `Sec-WebSocket-Protocol`: the socket offers `omium.v1` and
 * `omium.bearer.<token>` (or `omium.apikey.<key>`), and the gateway answers `omium.v1`.
 */

import { loadCredential, type Credential } from '../auth/session'
import { API, withQuery } from './client'
import type { StreamEvent } from './types'

export const WS_PROTOCOL = 'omium.v1'

export function wsProtocols(credential: Credential): string[] {
  const prefix = credential.kind === 'apiKey' ? 'omium.apikey.' : 'omium.bearer.'
  return [WS_PROTOCOL, prefix + credential.value]
}

export type TenantStatus = 'connecting' | 'live' | 'off'

export interface TenantOptions {
  /** Only these event types (the gateway filters; `resync` always comes). */
  types?: string[]
  onEvent: (event: StreamEvent) => void
  /** The read model was rebuilt: what was read before may be stale, read it again. */
  onResync: () => void
  onStatus: (status: TenantStatus) => void
}

// Close codes after which reconnecting cannot help (the credential or the role).
const FINAL = new Set([1008, 4401, 4403])

/** Follow the tenant's events, reconnecting after the last cursor. Returns a stop function. */
export function followTenant({ types, onEvent, onResync, onStatus }: TenantOptions): () => void {
  let socket: WebSocket | null = null
  let stopped = false
  let cursor: string | null = null
  let failures = 0
  let timer: ReturnType<typeof setTimeout> | null = null

  function connect() {
    const credential = loadCredential()
    if (stopped || !credential) {
      onStatus('off')
      return
    }
    onStatus('connecting')
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const path = withQuery(`${API}/events/ws`, { types: types?.join(','), cursor })
    let ws: WebSocket
    try {
      ws = new WebSocket(`${scheme}//${location.host}${path}`, wsProtocols(credential))
    } catch {
      onStatus('off') // a credential that is no valid subprotocol token: fall back to polling
      return
    }
    socket = ws
    ws.onopen = () => {
      failures = 0
      onStatus('live')
    }
    ws.onmessage = (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as StreamEvent
      if (event.cursor) cursor = event.cursor
      if (event.event_type === 'resync') onResync()
      else onEvent(event)
    }
    ws.onclose = (close) => {
      socket = null
      if (stopped) return
      if (FINAL.has(close.code)) {
        onStatus('off')
        return
      }
      onStatus('connecting')
      failures += 1
      timer = setTimeout(connect, Math.min(500 * 2 ** Math.min(failures, 4), 5_000))
    }
  }

  connect()
  return () => {
    stopped = true
    if (timer !== null) clearTimeout(timer)
    socket?.close(1000)
  }
}
