// The headers Immich needs to see the real client (its reverse-proxy document: "set the Host,
// X-Real-IP, X-Forwarded-Proto and X-Forwarded-For headers to their appropriate values").
// Computed once per request here and applied by every path that talks to Immich (HTTP proxy,
// well-known route, WebSocket tunnel), so they cannot disagree.
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isIP } from 'node:net'
import proxyAddr from 'proxy-addr'

export interface ForwardedHeadersOptions {
  /**
   * Addresses, CIDRs or proxy-addr names (loopback, linklocal, uniquelocal) of proxies in front
   * of this one. Default: none, so a client cannot forge its address or scheme.
   */
  trustProxy?: string[]
}

/** Header values that replace whatever the client sent under the same names. */
export interface ForwardedHeaders {
  host?: string
  'x-real-ip': string
  'x-forwarded-for': string
  'x-forwarded-proto': string
  'x-forwarded-host'?: string
}

declare module 'fastify' {
  interface FastifyRequest {
    /** What Immich must receive as Host and X-Forwarded-*; see forwarded-headers.ts. */
    forwardedHeaders: ForwardedHeaders
  }
}

type Trust = (address: string, hop: number) => boolean

// Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; Immich logs and rate-limits
// by this value, so give it the address the client has.
function plainAddress (address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

function single (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

/**
 * The right-most address of `chain` that is not a trusted proxy, as nginx's realip module with
 * `real_ip_recursive on` finds it: empty entries are skipped, and an entry that is not an IP
 * address ends the walk at the last address a trusted hop vouched for.
 */
function clientBehindTrustedProxies (chain: string, trust: Trust): string {
  const hops = chain.split(',').map(hop => plainAddress(hop.trim())).filter(hop => hop !== '')
  let client = hops[hops.length - 1]
  for (let i = hops.length - 1; i >= 0; i--) {
    if (isIP(hops[i]) === 0) break
    client = hops[i]
    if (!trust(hops[i], hops.length - 1 - i)) break
  }
  return client
}

/**
 * nginx `$proxy_add_x_forwarded_for`: the client's own list with the peer appended. Only a
 * trusted peer's X-Forwarded-* are believed, and then X-Real-IP is the client they name.
 */
export function forwardedHeadersFor (request: FastifyRequest, trust: Trust): ForwardedHeaders {
  const headers = request.raw.headers
  const peer = plainAddress(request.raw.socket.remoteAddress ?? '')
  const incomingFor = single(headers['x-forwarded-for'])?.trim()
  const chain = incomingFor ? `${incomingFor}, ${peer}` : peer
  const host = headers[':authority'] as string | undefined ?? headers.host
  const peerTrusted = trust(peer, 0)

  let realIp = peer
  let proto: string = request.listenerScheme
  let forwardedHost = host
  if (peerTrusted) {
    realIp = clientBehindTrustedProxies(chain, trust)
    proto = single(headers['x-forwarded-proto'])?.split(',')[0].trim() || proto
    forwardedHost = single(headers['x-forwarded-host']) ?? host
  }

  const forwarded: ForwardedHeaders = {
    'x-real-ip': realIp,
    'x-forwarded-for': chain,
    'x-forwarded-proto': proto
  }
  // mirrors `proxy_set_header Host $http_host`: the port stays, unlike nginx's `$host`
  if (host !== undefined) forwarded.host = host
  if (forwardedHost !== undefined) forwarded['x-forwarded-host'] = forwardedHost
  return forwarded
}

export default fp<ForwardedHeadersOptions>(async function forwardedHeaders (fastify, opts) {
  const trustList = opts.trustProxy ?? []
  const trust: Trust = trustList.length === 0 ? () => false : proxyAddr.compile(trustList)

  fastify.decorateRequest('forwardedHeaders', null as unknown as ForwardedHeaders)
  // a callback hook: an async one costs every request a promise
  fastify.addHook('onRequest', (request, reply, done) => {
    request.forwardedHeaders = forwardedHeadersFor(request, trust)
    done()
  })
}, { name: 'immich-proxy-forwarded-headers', fastify: '5.x', dependencies: ['immich-proxy-tls'] })
