// Served on the admin listener only: on the proxied host, /metrics would shadow an Immich path.
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { X509Certificate } from 'node:crypto'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { AccessKeyRefused, AcmeOrdered, RequestDone, RequestStarted, WebSocketClosed } from './events.js'
import { dnsNames } from '../tls/certificates.js'

export interface MetricsOptions {
  /**
   * Where the metrics are kept. Default: a new registry, with prom-client's Node and process
   * metrics under their usual names (`process_*`, `nodejs_*`), the ones stock Node dashboards query.
   */
  registry?: Registry
  /**
   * The certificate the HTTPS listener serves now (PEM), read at each scrape for
   * `immich_proxy_certificate_expiry_timestamp_seconds`. Default: none (no such series).
   */
  servedCertificate?: () => Buffer | undefined
  /**
   * The Immich servers, when there are several (UPSTREAM_URL a list), read at each scrape for
   * `immich_proxy_upstream_up` and `immich_proxy_upstream_requests_total`. Default: none.
   */
  upstreams?: () => ReadonlyArray<{ origin: string, up: boolean, sent: number }>
}

/** The DNS names a certificate is for (its subjectAltName; its CN when it has none). */
function namesOf (leaf: X509Certificate): string[] {
  const names = dnsNames(leaf)
  if (names.length > 0) return names
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1]
  return cn === undefined ? [] : [cn]
}

function statusClass (statusCode: number): string {
  return statusCode === 0 ? 'aborted' : `${Math.floor(statusCode / 100)}xx`
}

export default fp<MetricsOptions>(async function metrics (fastify, opts) {
  const registry = opts.registry ?? new Registry()
  if (opts.registry === undefined) collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const requests = new Counter({ name: 'immich_proxy_requests_total', help: 'Requests answered, by status class (aborted: no response was sent)', labelNames: ['status_class'], registers })
  const bytesIn = new Counter({ name: 'immich_proxy_received_bytes_total', help: 'Bytes received from clients (HTTP/1.1 including headers; WebSocket traffic included)', registers })
  const bytesOut = new Counter({ name: 'immich_proxy_sent_bytes_total', help: 'Bytes sent to clients (HTTP/1.1 including headers; WebSocket traffic included)', registers })
  const uploads = new Gauge({ name: 'immich_proxy_uploads_in_flight', help: 'Requests with a body still in progress', registers })
  const websockets = new Gauge({ name: 'immich_proxy_websockets_open', help: 'WebSockets currently tunnelled to Immich', registers })
  const upstream = new Histogram({
    name: 'immich_proxy_upstream_response_seconds',
    help: 'Time from handing a request to Immich to its response headers',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600],
    registers
  })
  const refusals = new Counter({ name: 'immich_proxy_access_key_refusals_total', help: 'Requests refused by the access key guard, by reason', labelNames: ['reason'], registers })
  const orders = new Counter({ name: 'immich_proxy_acme_orders_total', help: 'Certificate orders to the ACME CA, by result (issued, failed)', labelNames: ['result'], registers })
  const served = opts.servedCertificate
  // parsed again only when the served certificate changes (a reload, a renewal)
  let parsed: { pem: Buffer, names: string[], expiry: number } | undefined
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'immich_proxy_certificate_expiry_timestamp_seconds',
    help: 'When the certificate the HTTPS listener serves expires (Unix time), by each name it is for',
    labelNames: ['domain'],
    registers,
    collect () {
      this.reset()
      const pem = served?.()
      if (pem === undefined) return
      if (parsed?.pem !== pem) {
        const leaf = new X509Certificate(pem)
        parsed = { pem, names: namesOf(leaf), expiry: Math.floor(new Date(leaf.validTo).getTime() / 1000) }
      }
      for (const domain of parsed.names) this.set({ domain }, parsed.expiry)
    }
  })

  const upstreams = opts.upstreams
  if (upstreams !== undefined) {
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'immich_proxy_upstream_up',
      help: 'Whether each Immich server is in service (1) or taken out after a failed health check or a refused connection (0)',
      labelNames: ['upstream'],
      registers,
      collect () {
        for (const server of upstreams()) this.set({ upstream: server.origin }, server.up ? 1 : 0)
      }
    })
    const counted = new Map<string, number>()
    // eslint-disable-next-line no-new
    new Counter({
      name: 'immich_proxy_upstream_requests_total',
      help: 'Requests and WebSocket upgrades sent to each Immich server (a retry on another counts twice)',
      labelNames: ['upstream'],
      registers,
      collect () {
        for (const server of upstreams()) {
          this.inc({ upstream: server.origin }, server.sent - (counted.get(server.origin) ?? 0))
          counted.set(server.origin, server.sent)
        }
      }
    })
  }

  const handlers: Record<string, (message: unknown) => void> = {
    'immich-proxy:request-started': message => {
      if ((message as RequestStarted).hasBody) uploads.inc()
    },
    'immich-proxy:request-done': message => {
      const done = message as RequestDone
      if (done.hasBody) uploads.dec()
      requests.inc({ status_class: statusClass(done.statusCode) })
      bytesIn.inc(done.bytesIn)
      bytesOut.inc(done.bytesOut)
      if (done.upstreamMs !== undefined) upstream.observe(done.upstreamMs / 1000)
    },
    'immich-proxy:websocket-opened': () => websockets.inc(),
    'immich-proxy:websocket-closed': message => {
      const closed = message as WebSocketClosed
      websockets.dec()
      bytesIn.inc(closed.bytesFromClient)
      bytesOut.inc(closed.bytesToClient)
    },
    'immich-proxy:access-key-refused': message => refusals.inc({ reason: (message as AccessKeyRefused).reason }),
    'immich-proxy:acme-ordered': message => orders.inc({ result: (message as AcmeOrdered).result })
  }
  for (const [name, handler] of Object.entries(handlers)) subscribe(name, handler)
  fastify.addHook('onClose', async () => {
    for (const [name, handler] of Object.entries(handlers)) unsubscribe(name, handler)
  })

  fastify.get('/metrics', async (request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
}, { name: 'immich-proxy-metrics', fastify: '5.x' })
