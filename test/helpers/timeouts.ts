// Helpers for the timeout and upstream-failure tests: the proxy with Node's own server timers
// lowered (to prove they do not cut a transfer that keeps moving), a body that trickles, and a
// bounded wait that tells a cut response from a hung one.
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import app from '../../src/app.js'
import { parseConfig } from '../../src/config.js'
import { serverOptions } from '../../src/server-options.js'

/**
 * Node's server timers that could cut a long transfer, lowered to 3 s and checked four times a
 * second (Node checks every 30 s by default), so an 8 s transfer would cross them. requestTimeout
 * is not lowered: it is a limit on the whole request by design, which is why serverOptions sets 0.
 */
export const LOWERED_NODE_TIMERS: FastifyHttpOptions<Server> = {
  keepAliveTimeout: 3000,
  http: { headersTimeout: 3000, connectionsCheckingInterval: 250 }
}

/**
 * Like helper.ts `startProxy`, with `overrides` laid over the production server options.
 */
export async function startProxyWithServerOptions (
  t: Test,
  upstream: string,
  env: Record<string, string>,
  overrides: FastifyHttpOptions<Server>
): Promise<{ app: FastifyInstance, url: string, port: number }> {
  const config = parseConfig({ UPSTREAM_URL: upstream, LOG_LEVEL: 'silent', ...env })
  const server = Fastify({ ...serverOptions(config), ...overrides })
  await server.register(app, config)
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const port = (server.server.address() as AddressInfo).port
  return { app: server, url: `http://127.0.0.1:${port}`, port }
}

/** `bytes` one at a time, `everyMs` apart: a transfer that keeps moving, slowly. */
export function trickle (bytes: Buffer, everyMs: number): Readable {
  return Readable.from((async function * () {
    for (let i = 0; i < bytes.length; i++) {
      if (i > 0) await sleep(everyMs)
      yield bytes.subarray(i, i + 1)
    }
  })(), { objectMode: false })
}

export type Settled<T> = { state: 'resolved', value: T } | { state: 'rejected', error: Error } | { state: 'pending' }

/** How `promise` settled, or 'pending' if it has not within `ms`: a hang shows as 'pending'. */
export async function settleWithin<T> (promise: Promise<T>, ms: number): Promise<Settled<T>> {
  const timer = new AbortController()
  const outcome = promise.then(
    (value): Settled<T> => ({ state: 'resolved', value }),
    (error: Error): Settled<T> => ({ state: 'rejected', error })
  )
  const pending = sleep(ms, { state: 'pending' } as Settled<T>, { signal: timer.signal }).catch(() => ({ state: 'pending' }) as Settled<T>)
  try {
    return await Promise.race([outcome, pending])
  } finally {
    timer.abort()
  }
}

// one definition, shared with the WebSocket tests
export { closedPort } from './websocket.js'
