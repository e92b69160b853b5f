// The admin listener: liveness, readiness and Prometheus metrics, on a port of their own (loopback
// by default) so that nothing here can shadow an Immich path on the proxied host.
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import { isIP } from 'node:net'
import proxyAddr from '@fastify/proxy-addr'
import type { Config } from './config.js'
import metrics, { type MetricsOptions } from '../plugins/observability/metrics.js'
import { loggerOptions } from './server-options.js'
import type { FailureLimiter } from '../plugins/access-key/failure-limiter.js'
import { pingFailure } from './immich-ping.js'

const loopback = proxyAddr.compile(['loopback'])

export interface ReadinessProbe {
  /** The main listener sheds load (plugins/observability/load-shedding.ts): new requests get 503. */
  underPressure: () => boolean
  /** The process is draining for shutdown: the main listener takes no new connections. */
  closing: () => boolean
  /**
   * With ACME_DOMAINS: whether the HTTPS listener serves the CA's certificate yet (not the
   * temporary self-signed one a first start serves while it orders).
   */
  certificateIssued?: () => boolean
  /** The certificate the HTTPS listener serves now, for its expiry in /metrics. */
  servedCertificate?: () => Buffer | undefined
  /**
   * Whether Immich answers its liveness route (undefined) or what went wrong, asked over the
   * proxy's own pools. Default: asked apart, with Node's fetch.
   */
  immich?: (timeoutMs: number) => Promise<string | undefined>
  /** The Immich servers when there are several, for their state and requests in /metrics. */
  upstreams?: MetricsOptions['upstreams']
}

/**
 * With `brake` (the access key's, shared by the proxied listeners), an operator can lift its
 * cool-downs: `POST /access-key/brake/clear[?client=<address>]`.
 */
export async function buildAdminServer (config: Config, probe: ReadinessProbe, brake?: FailureLimiter): Promise<FastifyInstance> {
  const admin = Fastify({ logger: loggerOptions(config), logController: new LogController({ disableRequestLogging: true }) })
  await admin.register(metrics, { servedCertificate: probe.servedCertificate, upstreams: probe.upstreams })

  admin.get('/livez', async () => ({ status: 'ok' }))

  admin.get('/readyz', async (request, reply) => {
    const failure = probe.immich === undefined ? await pingFailure(config.upstream, 2000) : await probe.immich(2000)
    const immich = failure === undefined
    const underPressure = probe.underPressure()
    const closing = probe.closing()
    const issued = probe.certificateIssued?.()
    const ready = immich && !underPressure && !closing && issued !== false
    reply.code(ready ? 200 : 503)
    return {
      status: ready ? 'ready' : 'not ready',
      immich: immich ? 'up' : 'down',
      underPressure,
      closing,
      ...(issued === undefined ? {} : { certificate: issued ? 'issued' : 'temporary' })
    }
  })

  if (brake !== undefined) {
    // Loopback peers only: ADMIN_HOST may be opened to a metrics scraper, and a guesser able to
    // clear the brake would have none.
    admin.post<{ Querystring: { client?: string } }>('/access-key/brake/clear', async (request, reply) => {
      if (!loopback(request.socket.remoteAddress ?? '', 0)) {
        return await reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'only a loopback client may clear the brake' })
      }
      const client = request.query.client
      if (client !== undefined && isIP(client) === 0) {
        return await reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'client must be an IP address' })
      }
      const cleared = brake.clear(client)
      request.log.warn({ client: client ?? 'everyone', cleared }, 'access key brake cleared by an operator')
      return { cleared }
    })
  }
  return admin
}
