import Fastify, { type FastifyHttp2SecureOptions, type FastifyHttpsOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Http2SecureServer } from 'node:http2'
import type { Server as HttpsServer } from 'node:https'
import { hostname, networkInterfaces } from 'node:os'
import type { Server } from 'node:http'
import accessLog from '../plugins/observability/access-log.js'
import loadShedding from '../plugins/observability/load-shedding.js'
import app, { redirectApp } from './app.js'
import type { Config } from './config.js'
import type { FailureLimiter } from '../plugins/access-key/failure-limiter.js'
import { loggerOptions, serverOptions } from './server-options.js'
import { HTTP2_SETTINGS, connectionLimits, guardHttp2Streams, guardListener } from './connection-limits.js'
import { DEFAULTS } from '../plugins/defaults.js'
import {
  CLIENT_CERTIFICATE_REQUEST, TLS_CONTEXT_OPTIONS, loadCertificatePair, loadClientCa, selfSignedPair, type CertificateFiles, type CertificatePair
} from '../plugins/tls/certificates.js'
import { AcmeCertificates, type AcmeOptions } from '../plugins/tls/acme.js'
import type { ImmichUpstream } from '../plugins/forwarding/upstream.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The main listener's certificate that new HTTPS connections get now (PEM); undefined on plain HTTP. */
    servedCertificate: () => Buffer | undefined
  }
}

/** Names a LAN user may type: this machine's name, localhost and every address it has. */
function selfSignedNames (): string[] {
  const addresses = Object.values(networkInterfaces()).flat().map(info => info?.address).filter(address => address !== undefined)
  return [...new Set(['localhost', hostname(), ...addresses])]
}

export interface BuildOptions {
  /**
   * Where the pino log lines go. Default: stdout, what `docker logs` shows; a test or an embedder
   * passes its own writable.
   */
  logStream?: NodeJS.WritableStream
  /** The access key's brake, when listeners share one (src/run.ts). Default: one per listener. */
  accessKeyBrake?: FailureLimiter
  /**
   * With ACME_DOMAINS, the certificates the HTTPS listener serves and the challenges it answers,
   * shared with the HTTP_PORT listener; the caller starts it once every listener is up (src/run.ts).
   * Default: one of the main listener's own, started when it listens.
   */
  acme?: AcmeCertificates
  /** Immich's address and pools, shared by the listeners (src/run.ts). Default: each listener's own. */
  immich?: ImmichUpstream
}

/** ACME_DOMAINS and its settings, as the ACME plugin takes them. */
export async function openAcme (config: Config): Promise<AcmeCertificates | undefined> {
  return config.acme === undefined ? undefined : await AcmeCertificates.open(config.acme satisfies AcmeOptions)
}

function optionsFor (config: Config, build: BuildOptions): FastifyServerOptions {
  const base = serverOptions(config)
  if (build.logStream === undefined) return base
  // same level and redaction as stdout; JSON lines, since a stream is read by a program
  return { ...base, logger: { ...(loggerOptions(config, false) as object), stream: build.logStream } }
}

async function certificateFor (config: Config, acme: AcmeCertificates | undefined): Promise<{ pair: CertificatePair, files?: CertificateFiles } | undefined> {
  if (config.tls === undefined) return undefined
  if (acme !== undefined) return { pair: acme.current }
  if (config.tls.selfSigned) return { pair: await selfSignedPair(selfSignedNames()) }
  const files = { certFile: config.tls.certFile, keyFile: config.tls.keyFile }
  return { pair: loadCertificatePair(files), files }
}

/**
 * The main listener: plain HTTP, or HTTPS (HTTP/2 with HTTP/1.1 fallback unless HTTP2=false).
 * Throws CertificateError (naming TLS_CERT_FILE, TLS_KEY_FILE or TLS_CLIENT_CA_FILE) for a file
 * that cannot serve.
 */
export async function buildServer (config: Config, build: BuildOptions = {}): Promise<FastifyInstance> {
  const ownAcme = build.acme === undefined ? await openAcme(config) : undefined
  const acme = build.acme ?? ownAcme
  const certificate = await certificateFor(config, acme)
  // parseConfig refuses TLS_CLIENT_CA_FILE without TLS
  const clientCa = config.tlsClientCaFile === undefined ? undefined : loadClientCa(config.tlsClientCaFile)
  const base = optionsFor(config, build)
  const https = certificate === undefined
    ? undefined
    : {
        ...TLS_CONTEXT_OPTIONS,
        cert: certificate.pair.cert,
        key: certificate.pair.key,
        allowHTTP1: true,
        // tls-alpn-01 is answered on this listener: the ALPN and SNI callbacks replace ALPNProtocols
        ...(acme?.options.challenge === 'tls-alpn-01' ? acme.challenges.serverOptions(config.http2 ? ['h2', 'http/1.1'] : ['http/1.1']) : {}),
        ...(clientCa === undefined ? {} : { ...CLIENT_CERTIFICATE_REQUEST, ca: clientCa })
      }
  // Fastify types an http2 server apart; the plugins read only what both kinds of request share
  let server: FastifyInstance
  if (https === undefined) server = Fastify(base)
  else if (config.http2) server = Fastify({ ...base, http2: true, https: { ...https, settings: HTTP2_SETTINGS } } as FastifyHttp2SecureOptions<Http2SecureServer>) as unknown as FastifyInstance
  else server = Fastify({ ...base, https } as FastifyHttpsOptions<HttpsServer>) as unknown as FastifyInstance

  // An http2 server with allowHTTP1 keeps Node's HTTP/1.1 defaults for its HTTP/1.1 clients,
  // among them a 300 s requestTimeout that would cut long uploads: the same settings as the
  // plain server, set here because Fastify passes them only to http.createServer.
  const node = server.server as Server
  node.requestTimeout = 0
  node.keepAliveTimeout = base.keepAliveTimeout ?? DEFAULTS.keepAliveTimeout
  const limits = connectionLimits(config)
  guardListener(node, server.log, limits.maxConnections)
  if (https !== undefined && config.http2) guardHttp2Streams(node, server.log)
  for (const warning of limits.warnings) server.log.warn(warning)
  server.log.info({
    maxConnections: limits.maxConnections,
    fdLimit: limits.fdLimit,
    fdLimitKnown: limits.fdLimitKnown,
    upstreamMaxConnections: limits.upstreamMaxConnections,
    http2MaxConcurrentStreams: https !== undefined && config.http2 ? HTTP2_SETTINGS.maxConcurrentStreams : undefined
  }, 'connection limits')

  // first, on the server itself, so that it sees every request, the shed and refused ones too
  await server.register(accessLog)
  // on the server itself, so that readiness (src/admin.ts) can ask it
  await server.register(loadShedding, {
    maxEventLoopDelay: config.loadShedEventLoopDelay,
    maxRssBytes: config.loadShedMemory
  })
  // the certificate new connections get now, for its expiry in /metrics (src/admin.ts)
  let served = certificate?.pair.cert
  server.decorate('servedCertificate', () => served)
  await server.register(app, {
    ...config,
    upstreamMaxConnections: limits.upstreamMaxConnections,
    accessKeyBrake: build.accessKeyBrake,
    immich: build.immich,
    certificate: certificate === undefined
      ? undefined
      : { certificate: certificate.pair, certificateFiles: certificate.files, clientCa, clientCaFile: config.tlsClientCaFile, acme, onServed: cert => { served = cert } }
  })
  if (ownAcme !== undefined) {
    server.addHook('onListen', async () => ownAcme.start(server.log))
    server.addHook('onClose', async () => ownAcme.close())
  }
  if (config.tls?.selfSigned === true) {
    server.log.warn('TLS_SELF_SIGNED: serving a generated certificate; browsers and the mobile app will warn. Use real certificates (TLS_CERT_FILE/TLS_KEY_FILE) beyond a first try')
  }
  return server
}

export async function buildRedirectServer (config: Config, build: BuildOptions = {}): Promise<FastifyInstance | undefined> {
  if (config.httpPort === undefined) return undefined
  const server = Fastify(optionsFor(config, build))
  guardListener(server.server, server.log, connectionLimits(config).maxConnections)
  await server.register(accessLog)
  await server.register(redirectApp, {
    ...config,
    upstreamMaxConnections: connectionLimits(config).upstreamMaxConnections,
    accessKeyBrake: build.accessKeyBrake,
    immich: build.immich,
    hsts: false,
    httpsPort: config.httpsRedirectPort,
    acmeChallenges: build.acme?.options.challenge === 'http-01' ? build.acme.challenges : undefined
  })
  return server
}
