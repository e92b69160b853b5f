// The admin listener: liveness, readiness and Prometheus metrics, on a port of their own (loopback
// by default) so that nothing here can shadow an Immich path on the proxied host.
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import { request } from 'undici'
import type { Config } from './config.js'
import metrics from '../plugins/metrics.js'
import { loggerOptions } from './server-options.js'

export interface ReadinessProbe {
  /** The main listener sheds load (plugins/load-shedding.ts): new requests get 503. */
  underPressure: () => boolean
  /** The process is draining for shutdown: the main listener takes no new connections. */
  closing: () => boolean
}

/** Immich's own liveness route: `{"res":"pong"}` once the server is up. */
async function upstreamAnswers (upstream: string): Promise<boolean> {
  try {
    const response = await request(`${upstream}/api/server/ping`, { headersTimeout: 2000, bodyTimeout: 2000 })
    const body = await response.body.text()
    return response.statusCode === 200 && body.includes('pong')
  } catch {
    return false
  }
}

export async function buildAdminServer (config: Config, probe: ReadinessProbe): Promise<FastifyInstance> {
  const admin = Fastify({ logger: loggerOptions(config), logController: new LogController({ disableRequestLogging: true }) })
  await admin.register(metrics)

  admin.get('/livez', async () => ({ status: 'ok' }))

  // Every reason is in the body, so that a 503 says which one holds.
  admin.get('/readyz', async (request, reply) => {
    const immich = await upstreamAnswers(config.upstream)
    const underPressure = probe.underPressure()
    const closing = probe.closing()
    const ready = immich && !underPressure && !closing
    reply.code(ready ? 200 : 503)
    return { status: ready ? 'ready' : 'not ready', immich: immich ? 'up' : 'down', underPressure, closing }
  })
  return admin
}
