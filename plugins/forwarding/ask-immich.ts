// A question the proxy asks Immich on its own behalf, over the same pool as the traffic it guards.
import type { Dispatcher } from 'undici'
import type { ImmichUpstream } from './upstream.js'

/** Every connection to Immich stayed busy for PROXY_TIMEOUT while the request waited for one. */
export class UpstreamBusyError extends Error {
  readonly code = 'IMMICH_PROXY_UPSTREAM_BUSY'
  constructor () {
    super('no connection to Immich came free in time (UPSTREAM_MAX_CONNECTIONS)')
    this.name = 'UpstreamBusyError'
  }
}

export interface ImmichAnswer {
  statusCode: number
  /** The body as text, at most MAX_ANSWER_BYTES of it. */
  body: string
}

export interface ImmichQuestion {
  method: Dispatcher.HttpMethod
  path: string
  headers: Record<string, string>
}

// what Immich answers to the checks is a few dozen bytes of JSON
const MAX_ANSWER_BYTES = 64 * 1024

/**
 * Rejects with undici's error when Immich is unreachable or silent past `timeoutMs`, and with
 * UpstreamBusyError when no connection came free in that time.
 */
export async function askImmich (dispatcher: Dispatcher, question: ImmichQuestion, timeoutMs: number): Promise<ImmichAnswer> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let statusCode = 0
    let settled = false
    const settle = (error?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(queued)
      if (error !== undefined) reject(error)
      else resolve({ statusCode, body: Buffer.concat(chunks).toString('utf8') })
    }
    // the pool's timeouts start once a connection is assigned; this one covers the wait for it
    // (undici drops a question still queued when a connection frees: onConnect)
    const queued = setTimeout(() => settle(new UpstreamBusyError()), timeoutMs).unref()
    const handler: Dispatcher.DispatchHandler = {
      onConnect: (abort: (error?: Error) => void) => {
        clearTimeout(queued)
        if (settled) abort()
      },
      onHeaders: (status: number) => {
        // interim answers (100, 103) are followed by the final one
        if (status >= 200) statusCode = status
        return true
      },
      onData: (chunk: Buffer) => {
        if (size < MAX_ANSWER_BYTES) chunks.push(chunk.subarray(0, MAX_ANSWER_BYTES - size))
        size += chunk.length
        return true
      },
      onComplete: () => settle(),
      onError: (error: Error) => settle(error)
    }
    dispatcher.dispatch({ ...question, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }, handler)
  })
}

/**
 * undefined when Immich answered its liveness route (`GET /api/server/ping`, "pong") within
 * `timeoutMs`, else what went wrong (a status, or the error's code). Asked over the well-known
 * pool, so that a saturated traffic pool does not read as Immich being down. With several
 * servers, what their health checks found: undefined while any is in service.
 */
export async function immichPingFailure (immich: ImmichUpstream, timeoutMs: number): Promise<string | undefined> {
  const { servers } = immich.servers
  if (servers.length > 1) {
    if (immich.servers.anyUp()) return undefined
    return `no server in service (${servers.map(server => `${server.origin}: ${server.failure ?? 'unknown'}`).join('; ')})`
  }
  return await servers[0].check(timeoutMs)
}

/** undefined for Immich's answer to `GET /api/server/ping`, else what the answer was instead. */
export function pongFailure (statusCode: number, body: string): string | undefined {
  if (statusCode === 200 && body.includes('pong')) return undefined
  return statusCode === 200 ? 'status 200, but not Immich\'s pong' : `status ${statusCode}`
}
