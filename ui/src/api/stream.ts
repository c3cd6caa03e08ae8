/** Following a run live: its Server-Sent Events over fetch (credential in a header). */

import { SseParser } from '../lib/sse'
import { request } from './client'
import { ApiError } from './problem'
import type { StreamEvent } from './types'

export type StreamStatus =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'waiting'; reason: string }
  | { state: 'ended' }
  | { state: 'error'; error: unknown }

const TERMINAL = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionHalted', 'ExecutionCancelled'])

export interface FollowOptions {
  onEvent: (event: StreamEvent) => void
  onStatus: (status: StreamStatus) => void
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })

/**
 * Follow a run's events from its start until its final event, reconnecting with
 * `Last-Event-ID` after a dropped connection. Returns a function that stops following.
 */
export function followRun(executionId: string, { onEvent, onStatus }: FollowOptions): () => void {
  const controller = new AbortController()
  const signal = controller.signal

  async function run() {
    const parser = new SseParser()
    let failures = 0
    while (!signal.aborted) {
      onStatus({ state: 'connecting' })
      let ended = false
      try {
        const headers: Record<string, string> = {}
        if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId
        const response = await request(`/executions/${encodeURIComponent(executionId)}/events`, {
          accept: 'text/event-stream',
          headers,
          signal,
        })
        if (!response.body) throw new Error('the stream has no body')
        onStatus({ state: 'live' })
        failures = 0
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          for (const message of parser.push(value)) {
            if (!message.data) continue
            const event = JSON.parse(message.data) as StreamEvent
            onEvent(event)
            if (TERMINAL.has(event.event_type)) ended = true
          }
        }
      } catch (error) {
        if (signal.aborted) return
        failures += 1
        if (error instanceof ApiError && error.status === 404) {
          // The live read model has not seen the run yet (it was just started): wait for it.
          onStatus({ state: 'waiting', reason: 'waiting for the first events of this run' })
        } else if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          onStatus({ state: 'error', error })
          return
        } else {
          onStatus({ state: 'error', error })
        }
        await sleep(Math.min(500 * 2 ** Math.min(failures, 4), 5_000), signal)
        continue
      }
      if (ended) {
        onStatus({ state: 'ended' })
        return
      }
      // The server closed without the final event (restart, Redis hiccup): resume after the last.
      await sleep(parser.retryMs ?? 1_000, signal)
    }
  }

  void run()
  return () => controller.abort()
}
