// Every listener the configuration asks for, closed in the order a drain needs. src/server.ts
// runs this under the process's signals; tests and embedders may run it as it is.
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { buildRedirectServer, buildServer, openAcme } from './build.js'
import { accessKeyBrake, immichUpstreamOptions } from './app.js'
import { ImmichUpstream } from '../plugins/forwarding/upstream.js'
import { immichPingFailure } from '../plugins/forwarding/ask-immich.js'
import { connectionLimits } from './connection-limits.js'
import type { SharedBrake } from '../plugins/access-key/shared-brake.js'

export interface Running {
  /** The proxy's listener (HTTP, or HTTPS with HTTP/2). */
  main: FastifyInstance
  /** The plain-HTTP listener on HTTP_PORT, when configured. */
  redirect?: FastifyInstance
  /** /livez, /readyz and /metrics on ADMIN_HOST:ADMIN_PORT, unless ADMIN_PORT=off. */
  admin?: FastifyInstance
  /**
   * The drain: the proxied listeners stop accepting, requests in flight finish, WebSocket tunnels
   * are cut (their clients reconnect), then the admin listener closes: it answers /readyz with 503
   * until then, so a load balancer stops sending traffic.
   */
  close: () => Promise<void>
}

/** On failure (a port in use, a bad certificate) closes what already started and rethrows. */
export async function run (config: Config): Promise<Running> {
  const started: FastifyInstance[] = []
  let closing = false
  // one brake for the process: wrong keys on every listener add up
  const brake = accessKeyBrake(config)
  // with REDIS_URL, shared with the other instances
  let shared: SharedBrake | undefined
  // one for the listeners: the HTTPS one serves its certificate, either may answer its challenges
  const acme = await openAcme(config)
  // one for the listeners and readiness: one set of pools to Immich
  const immich = new ImmichUpstream(immichUpstreamOptions({ ...config, upstreamMaxConnections: connectionLimits(config).upstreamMaxConnections }))
  try {
    const main = await buildServer(config, { accessKeyBrake: brake, acme, immich })
    started.push(main)
    // loaded only when asked for: ioredis is ~60 modules
    if (brake !== undefined && config.redisUrl !== undefined) {
      shared = await (await import('../plugins/access-key/shared-brake.js')).SharedBrake.open(config.redisUrl, brake, main.log)
    }
    const redirect = await buildRedirectServer(config, { accessKeyBrake: brake, acme, immich })
    if (redirect !== undefined) started.push(redirect)
    const admin = config.adminPort === undefined
      ? undefined
      // loaded only when asked for: prom-client and its dependencies are ~80 modules
      : await (await import('./admin.js')).buildAdminServer(config, {
        underPressure: () => main.hasDecorator('isShedding') && main.isShedding(),
        closing: () => closing,
        certificateIssued: acme === undefined ? undefined : () => acme.issued,
        servedCertificate: () => main.servedCertificate(),
        immich: async timeoutMs => await immichPingFailure(immich, timeoutMs),
        upstreams: immich.servers.balanced ? () => immich.servers.servers : undefined
      }, brake)
    if (admin !== undefined) started.push(admin)

    await main.listen({ host: config.host, port: config.port })
    if (redirect !== undefined) await redirect.listen({ host: config.host, port: config.httpPort })
    if (admin !== undefined) await admin.listen({ host: config.adminHost, port: config.adminPort })
    // the CA validates against the listeners: order once they all answer
    acme?.start(main.log)
    immich.servers.startChecks(main.log)

    async function close (): Promise<void> {
      closing = true
      acme?.close()
      await Promise.all([main.close(), redirect?.close()])
      await admin?.close()
      await immich.close()
      await shared?.close()
    }
    return { main, redirect, admin, close }
  } catch (error) {
    acme?.close()
    await Promise.allSettled(started.map(async server => await server.close()))
    await immich.close()
    await shared?.close()
    throw error
  }
}
