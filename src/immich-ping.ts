// Immich's own liveness route, `GET /api/server/ping` → `{"res":"pong"}`: asked by /readyz
// (src/admin.ts) and once at start (src/server.ts), so that a wrong UPSTREAM_URL shows in the
// log at once instead of as 502s later. Loaded lazily: undici's index is ~110 modules.
import type { FastifyBaseLogger } from 'fastify'
import { request } from 'undici'

/** Sent with the check at start, so that Immich's log (and a test's stand-in) can tell it apart. */
export const STARTUP_CHECK_USER_AGENT = 'immich-proxy (start-up check)'

const PING_BODY_LIMIT = 1024

/** undefined when Immich answered pong within `timeoutMs`, else what went wrong. */
export async function pingFailure (upstream: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<string | undefined> {
  try {
    const response = await request(`${upstream}/api/server/ping`, {
      headers,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // the connection attempt too: an address that drops packets would otherwise take 10 s
      signal: AbortSignal.timeout(timeoutMs)
    })
    // Immich's answer is 15 bytes; whatever else answers there is read no further than this
    let body = ''
    for await (const chunk of response.body) {
      body += String(chunk)
      if (body.length >= PING_BODY_LIMIT) break
    }
    response.body.destroy()
    if (response.statusCode === 200 && body.includes('pong')) return undefined
    return response.statusCode === 200 ? 'status 200, but not Immich\'s pong' : `status ${response.statusCode}`
  } catch (error) {
    const cause = error as NodeJS.ErrnoException
    return cause.code ?? cause.name
  }
}

/** Logs once whether Immich answers; a warning, never a failure: Immich may still be starting. */
export async function checkImmich (upstream: string, log: FastifyBaseLogger, timeoutMs = 3000): Promise<void> {
  const failure = await pingFailure(upstream, timeoutMs, { 'user-agent': STARTUP_CHECK_USER_AGENT })
  if (failure === undefined) log.info(`Immich answers at UPSTREAM_URL=${upstream}`)
  else log.warn(`Immich does not answer GET /api/server/ping at UPSTREAM_URL=${upstream} (${failure}); requests get 502 until it does. Is UPSTREAM_URL right, and is Immich running?`)
}
