// The whole proxy as one Fastify plugin. The order below is the request's path through it
// (docs/design.md): each plugin's hooks run in this order for every request and upgrade.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { METHODS } from 'node:http'
import type { Config } from './config.js'
import accessLog from '../plugins/observability/access-log.js'
import tls, { type TlsOptions } from '../plugins/tls/tls.js'
import forwardedHeaders from '../plugins/request/forwarded-headers.js'
import accessKey, { type AccessKeyOptions } from '../plugins/access-key/access-key.js'
import { FailureLimiter } from '../plugins/access-key/failure-limiter.js'
import bodyLimit from '../plugins/request/body-limit.js'
import wellKnown from '../plugins/forwarding/well-known.js'
import websocket from '../plugins/forwarding/websocket.js'
import proxy from '../plugins/forwarding/proxy.js'
import httpsRedirect, { type HttpsRedirectOptions } from '../plugins/tls/https-redirect.js'
import { ImmichUpstream, type ImmichUpstreamOptions } from '../plugins/forwarding/upstream.js'
import { DEFAULTS } from '../plugins/defaults.js'
import type { Dispatcher } from 'undici'

export type AppOptions = Pick<Config, 'upstream' | 'bodyLimit' | 'proxyTimeout' | 'trustProxy' | 'accessKeys'> &
  Partial<Pick<Config, 'upstreams' | 'upstreamPolicy' | 'upstreamHealthInterval' | 'upstreamMaxConnections' | 'hsts' | 'accessKeyFile' | 'accessKeyMaxFailures' | 'accessKeyFailureWindow' | 'accessKeyCooldown' | 'accessKeyCookieMaxAge' | 'accessKeyAllowImmichCredentials' | 'accessKeyAllowShareLinks' | 'tlsClientCaFile'>> & {
    /**
     * The certificate the HTTPS listener was created with, and its files to watch for renewal;
     * with `tlsClientCaFile`, the client CA it was created with (src/build.ts).
     */
    certificate?: Pick<TlsOptions, 'certificate' | 'certificateFiles' | 'clientCa' | 'clientCaFile' | 'acme' | 'onServed'>
    /**
     * Serve Immich for this host name only (nginx `server_name`) (a host constraint on every route of the app), so that
     * a shared Fastify server can carry its own routes on other hosts: Immich must own the root
     * path of its host. Default: every host.
     */
    serverName?: string | RegExp
    /**
     * The access key's brake, shared by every listener of the process so that their wrong keys
     * add up (src/run.ts builds one). Default: one of this app's own.
     */
    accessKeyBrake?: FailureLimiter
    /**
     * Immich's address and the pools to it, when listeners share them (src/run.ts); its owner
     * closes it. Default: one of this app's own, closed with it.
     */
    immich?: ImmichUpstream
  }

/**
 * A host name as a route constraint that also matches it with a port (`photos.example.org:8443`,
 * what a client sends off the default port) and in any case (host names are case-insensitive,
 * RFC 9110 §4.2.3); find-my-way compares strings exactly. A RegExp is used as given.
 */
function hostConstraint (name: string | RegExp): RegExp {
  if (typeof name !== 'string') return name
  return new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:[0-9]+)?$`, 'i')
}

type BrakeSettings = Partial<Pick<Config, 'accessKeyMaxFailures' | 'accessKeyFailureWindow' | 'accessKeyCooldown'>>

function failureLimit (opts: BrakeSettings): AccessKeyOptions['failureLimit'] {
  return opts.accessKeyMaxFailures === 0
    ? false
    : {
        maxFailures: opts.accessKeyMaxFailures ?? DEFAULTS.accessKeyMaxFailures,
        windowMs: opts.accessKeyFailureWindow ?? DEFAULTS.accessKeyFailureWindow,
        cooldownMs: opts.accessKeyCooldown ?? DEFAULTS.accessKeyCooldown
      }
}

/** The one brake a process's listeners share, or undefined when there is no gate or no brake. */
export function accessKeyBrake (config: Pick<Config, 'accessKeys' | 'accessKeyFile'> & Partial<Pick<Config, 'tlsClientCaFile'>> & BrakeSettings): FailureLimiter | undefined {
  const limit = failureLimit(config)
  const gate = config.accessKeys.length > 0 || config.accessKeyFile !== undefined || config.tlsClientCaFile !== undefined
  if (limit === false || limit === undefined || !gate) return undefined
  return new FailureLimiter(limit)
}

function accessKeyOptions (opts: AppOptions, dispatcher?: Dispatcher): AccessKeyOptions {
  const allowImmichCredentials = dispatcher !== undefined && (opts.accessKeyAllowImmichCredentials ?? DEFAULTS.accessKeyAllowImmichCredentials)
  const allowShareLinks = dispatcher !== undefined && (opts.accessKeyAllowShareLinks ?? DEFAULTS.accessKeyAllowShareLinks)
  return {
    accessKeys: opts.accessKeys,
    accessKeyFile: opts.accessKeyFile,
    failureLimit: failureLimit(opts),
    brake: opts.accessKeyBrake,
    cookieMaxAge: opts.accessKeyCookieMaxAge,
    clientCertificates: opts.tlsClientCaFile !== undefined,
    allowImmichCredentials,
    allowShareLinks,
    immich: allowImmichCredentials || allowShareLinks ? { dispatcher } : undefined
  }
}

/** ImmichUpstream's options from the settings (this app's, or src/run.ts's for every listener). */
export function immichUpstreamOptions (opts: Pick<AppOptions, 'upstream' | 'upstreams' | 'upstreamPolicy' | 'upstreamHealthInterval' | 'proxyTimeout' | 'upstreamMaxConnections'>): ImmichUpstreamOptions {
  return {
    upstream: opts.upstream,
    upstreams: opts.upstreams,
    policy: opts.upstreamPolicy,
    healthInterval: opts.upstreamHealthInterval,
    proxyTimeout: opts.proxyTimeout,
    upstreamMaxConnections: opts.upstreamMaxConnections
  }
}

/** An ImmichUpstream of the app's own: its health checks start when the app is ready, and it closes with the app. */
function ownUpstream (fastify: FastifyInstance, options: ImmichUpstreamOptions): ImmichUpstream {
  const immich = new ImmichUpstream(options)
  fastify.addHook('onReady', async () => { immich.servers.startChecks(fastify.log) })
  fastify.addHook('onClose', async () => { await immich.close() })
  return immich
}

const app: FastifyPluginAsync<AppOptions> = async (fastify, opts) => {
  if (opts.serverName !== undefined) {
    const host = hostConstraint(opts.serverName)
    fastify.addHook('onRoute', route => { route.constraints = { ...route.constraints, host } })
  }
  // "every method reaches Immich": Fastify 5 routes only the common methods unless told, and
  // Node parses more (WebDAV and others); CONNECT is not a request for a path.
  for (const method of METHODS) {
    if (method !== 'CONNECT' && !fastify.supportedMethods.includes(method)) fastify.addHttpMethod(method, { hasBody: true })
  }

  const upstream = { upstream: opts.upstream, proxyTimeout: opts.proxyTimeout, upstreamMaxConnections: opts.upstreamMaxConnections }
  // one pool to Immich for the traffic and for the gate's questions about credentials
  const immich = opts.immich ?? ownUpstream(fastify, immichUpstreamOptions(opts))
  const dispatcher = immich.dispatcher
  // Observation first, so that it sees every request, the refused ones included. The server of
  // src/build.ts registers it itself, ahead of load shedding, so that shed requests are seen too.
  if (!fastify.hasPlugin('immich-proxy-access-log')) await fastify.register(accessLog)
  await fastify.register(tls, { ...opts.certificate, hsts: opts.hsts })
  await fastify.register(forwardedHeaders, { trustProxy: opts.trustProxy })
  await fastify.register(accessKey, accessKeyOptions(opts, dispatcher))
  await fastify.register(bodyLimit, { bodyLimit: opts.bodyLimit })
  await fastify.register(wellKnown, { ...upstream, dispatcher: immich.wellKnown })
  await fastify.register(websocket, { ...upstream, servers: immich.servers })
  await fastify.register(proxy, { ...upstream, dispatcher })
}

/**
 * The plain-HTTP listener beside HTTPS (HTTP_PORT): the same guards, `/.well-known/immich`
 * proxied, everything else redirected to HTTPS.
 */
export const redirectApp: FastifyPluginAsync<AppOptions & { httpsPort: number, acmeChallenges?: HttpsRedirectOptions['acmeChallenges'] }> = async (fastify, opts) => {
  await fastify.register(tls, { hsts: false })
  await fastify.register(forwardedHeaders, { trustProxy: opts.trustProxy })
  // Only what is proxied is guarded here: the well-known route, whose exact path the guard leaves
  // open and whose other spellings (which the router also matches) it does not. A redirect
  // reveals nothing, and the unlock form must not be offered where the key would cross the
  // network in clear text: browsers are sent to HTTPS first. The guard's hooks are encapsulated
  // with the well-known route.
  await fastify.register(async function guardedWellKnown (scope) {
    await scope.register(accessKey, { ...accessKeyOptions(opts), cookieMaxAge: 0 })
    await scope.register(wellKnown, { upstream: opts.upstream, proxyTimeout: opts.proxyTimeout, upstreamMaxConnections: opts.upstreamMaxConnections, dispatcher: opts.immich?.wellKnown })
  })
  await fastify.register(httpsRedirect, { httpsPort: opts.httpsPort, acmeChallenges: opts.acmeChallenges })
}

export default app
