// Immich's liveness route, asked by /readyz and once at start, so a wrong UPSTREAM_URL shows in
// the log at once instead of as 502s later. Node's own fetch: undici's index in the bundle would
// be loaded by every start for one small request.
import type { FastifyBaseLogger } from 'fastify'
import { pongFailure } from '../plugins/forwarding/ask-immich.js'

/** Sent with the check at start, so that Immich's log (and a test's stand-in) can tell it apart. */
export const STARTUP_CHECK_USER_AGENT = 'immich-proxy (start-up check)'

const PING_BODY_LIMIT = 1024

async function bodyStart (response: Response): Promise<string> {
  if (response.body === null) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let body = ''
  try {
    while (body.length < PING_BODY_LIMIT) {
      const { done, value } = await reader.read()
      if (done) break
      body += decoder.decode(value, { stream: true })
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
  return body
}

/** undefined when Immich answered pong within `timeoutMs`, else what went wrong. */
export async function pingFailure (upstream: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<string | undefined> {
  try {
    // the connection attempt too: an address that drops packets would otherwise take 10 s
    const response = await fetch(`${upstream}/api/server/ping`, { headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    return pongFailure(response.status, await bodyStart(response))
  } catch (error) {
    // fetch's TypeError carries the socket's error as its cause: ECONNREFUSED, ENOTFOUND, …
    const cause = ((error as Error).cause ?? error) as NodeJS.ErrnoException
    return cause.code ?? cause.name
  }
}

/** Logs once whether Immich answers; a warning, never a failure: Immich may still be starting. */
export async function checkImmich (upstream: string, log: FastifyBaseLogger, timeoutMs = 3000): Promise<void> {
  const failure = await pingFailure(upstream, timeoutMs, { 'user-agent': STARTUP_CHECK_USER_AGENT })
  if (failure === undefined) log.info(`Immich answers at UPSTREAM_URL=${upstream}`)
  else log.warn(`Immich does not answer GET /api/server/ping at UPSTREAM_URL=${upstream} (${failure}); requests get 502 until it does. Is UPSTREAM_URL right, and is Immich running?`)
}
