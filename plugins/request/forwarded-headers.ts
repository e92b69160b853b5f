// Host and X-Forwarded-*, as Immich's reverse-proxy docs ask, computed once per request (target and
// authority settled first) and used by every path to Immich, so that they cannot disagree.
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import createError from '@fastify/error'
import type { IncomingMessage } from 'node:http'
import { isIP, type Socket } from 'node:net'
import proxyAddr from '@fastify/proxy-addr'

export interface ForwardedHeadersOptions {
  /**
   * Addresses, CIDRs or proxy-addr names (loopback, linklocal, uniquelocal) of proxies in front
   * of this one. Default: none, so a client cannot forge its address or scheme.
   */
  trustProxy?: string[]
}

/** Header values that replace whatever the client sent under the same names. */
export interface ForwardedHeaders {
  host: string
  'x-real-ip': string
  'x-forwarded-for': string
  'x-forwarded-proto': string
  'x-forwarded-host': string
}

declare module 'fastify' {
  interface FastifyRequest {
    /** What Immich must receive as Host and X-Forwarded-*. */
    forwardedHeaders: ForwardedHeaders
  }
}

type Trust = (address: string, hop: number) => boolean

export const UnsupportedTransferCodingError = createError('IMMICH_PROXY_TRANSFER_CODING', 'Transfer-Encoding %s is not supported; only chunked is', 501)
export const BadAuthorityError = createError('IMMICH_PROXY_BAD_AUTHORITY', '%s', 400)
export const BadFramingError = createError('IMMICH_PROXY_BAD_FRAMING', 'An HTTP/1.0 request cannot be chunked', 400)

// `http://authority/rest` (RFC 9112 §3.2.2); the scheme is case-insensitive
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/is
// RFC 3986 §3.2.2: a name or IPv4 address, or a bracketed IPv6 literal, with an optional port.
// No userinfo: RFC 9110 §4.2.4 forbids it in http(s) URIs.
const AUTHORITY = /^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/

/** How many Host fields the request carries (Node keeps only the first in `headers`). */
function hostFields (raw: IncomingMessage): number {
  let count = 0
  const fields = raw.rawHeaders
  for (let i = 0; i < fields.length; i += 2) if (fields[i].length === 4 && fields[i].toLowerCase() === 'host') count++
  return count
}

/**
 * Only chunked of the transfer codings may be forwarded (RFC 9112 §7): any other would be dropped
 * on the way; nginx answers 501 too. Two Host fields, or an HTTP/2 host naming another authority
 * than :authority (RFC 9112 §3.2, RFC 9113 §8.3.1), leave the host ambiguous.
 */
function refusal (raw: IncomingMessage): Error | undefined {
  const headers = raw.headers
  const codings = headers['transfer-encoding']
  if (codings !== undefined) {
    if (codings.toLowerCase() !== 'chunked') return new UnsupportedTransferCodingError(JSON.stringify(codings))
    // HTTP/1.0 has no chunked coding: a 1.0 hop before this one frames the body otherwise
    if (raw.httpVersionMajor === 1 && raw.httpVersionMinor === 0) return new BadFramingError()
  }
  const host = headers.host
  if (host !== undefined && host !== '') {
    if (hostFields(raw) > 1) return new BadAuthorityError('A request carries one Host field')
    if (!validAuthority(host)) return new BadAuthorityError('The Host field is not a host name or address with an optional port')
  }
  const authority = headers[':authority'] as string | undefined
  if (authority !== undefined) {
    if (!validAuthority(authority)) return new BadAuthorityError('The :authority is not a host name or address with an optional port')
    if (host !== undefined && authority.toLowerCase() !== host.toLowerCase()) return new BadAuthorityError('The host field and :authority name different hosts')
  }
  return undefined
}

function validAuthority (authority: string): boolean {
  if (!AUTHORITY.test(authority)) return false
  const port = /:([0-9]*)$/.exec(authority)
  return port === null || port[1] === '' || Number(port[1]) <= 65535
}

/**
 * RFC 9112 §3.2.2: a target in absolute form (what a forward proxy's client sends) is for its
 * authority, whatever Host says; Immich gets the origin form with that Host, as from nginx. The
 * router matched the path alone; later hooks read `raw.url` and Host. False: no form a proxy serves.
 */
function toOriginForm (raw: IncomingMessage): boolean {
  const url = raw.url as string
  // `*` (OPTIONS *, the server as a whole) is this proxy's to answer, and it has nothing to say
  if (url.charCodeAt(0) === 47 /* / */) return true
  const target = ABSOLUTE_FORM.exec(url)
  if (target === null || !validAuthority(target[1])) return false
  raw.url = target[2].charCodeAt(0) === 47 ? target[2] : `/${target[2]}`
  raw.headers.host = target[1]
  return true
}

function listenerAuthority (socket: Socket): string {
  const address = plainAddress(socket.localAddress ?? '')
  return `${address.includes(':') ? `[${address}]` : address}:${socket.localPort ?? ''}`
}

// What a client may claim about the original request besides X-Forwarded-For and -Proto: only a
// trusted proxy's claims reach Immich (X-Forwarded-Host is always set, from Host otherwise).
const CLAIMS = ['forwarded', 'x-forwarded-port', 'x-forwarded-server', 'x-forwarded-prefix', 'x-forwarded-ssl']

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
  // undici would fill in the upstream's own address for a request without one
  // an empty Host (a target without authority, RFC 9112 §3.2) names no host either
  const host = headers[':authority'] as string | undefined ?? (headers.host === '' ? undefined : headers.host) ?? listenerAuthority(request.raw.socket)
  const peerTrusted = trust(peer, 0)

  let realIp = peer
  let proto: string = request.listenerScheme
  let forwardedHost = host
  if (peerTrusted) {
    realIp = clientBehindTrustedProxies(chain, trust)
    proto = single(headers['x-forwarded-proto'])?.split(',')[0].trim() || proto
    forwardedHost = single(headers['x-forwarded-host']) ?? host
  }

  return {
    // mirrors `proxy_set_header Host $http_host`: the port stays, unlike nginx's `$host`
    host,
    'x-real-ip': realIp,
    'x-forwarded-for': chain,
    'x-forwarded-proto': proto,
    'x-forwarded-host': forwardedHost
  }
}

export default fp<ForwardedHeadersOptions>(async function forwardedHeaders (fastify, opts) {
  const trustList = opts.trustProxy ?? []
  const trust: Trust = trustList.length === 0 ? () => false : proxyAddr.compile(trustList)

  fastify.decorateRequest('forwardedHeaders', null as unknown as ForwardedHeaders)
  // a callback hook: an async one costs every request a promise
  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw
    const refused = refusal(raw) ?? (toOriginForm(raw) ? undefined : new BadAuthorityError('The request target is not a path or an http(s) URI'))
    if (refused !== undefined) {
      // the body of a refused request is not read: the connection cannot carry another one
      if (raw.httpVersionMajor === 1) reply.header('connection', 'close')
      done(refused)
      return
    }
    if (!trust(plainAddress(raw.socket.remoteAddress ?? ''), 0)) for (const name of CLAIMS) delete raw.headers[name]
    request.forwardedHeaders = forwardedHeadersFor(request, trust)
    done()
  })
}, { name: 'immich-proxy-forwarded-headers', fastify: '5.x', dependencies: ['immich-proxy-tls'] })
