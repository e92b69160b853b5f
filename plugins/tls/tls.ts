// TLS once the server exists: the client's scheme (nginx `$scheme`), certificate and client CA
// reloads, HSTS.
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ServerHttp2Session } from 'node:http2'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import { TLS_CONTEXT_OPTIONS, watchCertificatePair, watchClientCa, type CertificateFiles, type CertificatePair } from './certificates.js'
import { DEFAULTS } from '../defaults.js'
import type { AcmeCertificates } from './acme.js'

export interface TlsOptions {
  /**
   * The PEM files the listener was created with and the pair read from them: when given, a valid
   * new pair is put in service for new connections; open ones keep theirs. Default: none.
   */
  certificateFiles?: CertificateFiles
  certificate?: CertificatePair
  /**
   * The CA file that signs users' client certificates (TLS_CLIENT_CA_FILE) and what was read
   * from it when the listener was created with `requestCert` (src/build.ts). Watched like the
   * certificate files: a valid new file decides for new connections; open ones keep their verdict.
   */
  clientCaFile?: string
  clientCa?: Buffer
  /**
   * With ACME (plugins/tls/acme.ts): each certificate it obtains is put in service for new
   * connections, as a renewed file would be. Default: none.
   */
  acme?: Pick<AcmeCertificates, 'onCertificate'>
  /** Called with each certificate put in service after the first (a reloaded file, an ACME one). */
  onServed?: (cert: Buffer) => void
  /** How often the files are checked, in ms. Default 2000: a renewal is live within seconds. */
  reloadInterval?: number
  /**
   * Strict-Transport-Security on HTTPS responses (never on plain HTTP, where it means nothing).
   * Default `max-age=31536000` (one year, no includeSubDomains: other hosts of the domain may not
   * have TLS); false sends none. An Immich response that sets its own is left alone.
   */
  hsts?: string | false
}

declare module 'fastify' {
  interface FastifyRequest {
    readonly listenerScheme: 'http' | 'https'
  }
}

function listenerScheme (this: FastifyRequest): 'http' | 'https' {
  return (this.raw.socket as TLSSocket | null)?.encrypted === true ? 'https' : 'http'
}

export default fp<TlsOptions>(async function tls (fastify, opts) {
  fastify.decorateRequest('listenerScheme', { getter: listenerScheme })

  // Fastify takes an HTTP/2 request with neither Content-Length nor Content-Type as bodiless (it
  // looks for Transfer-Encoding, which HTTP/2 lacks), and Immich would get an empty body. Mark a
  // stream that did not end with its headers as HTTP/1.1 would; the marker is hop-by-hop.
  if (fastify.initialConfig.http2 === true) {
    fastify.addHook('onRequest', (request, reply, done) => {
      const raw = request.raw as FastifyRequest['raw'] & { stream?: { endAfterHeaders: boolean } }
      if (raw.httpVersionMajor === 2 && raw.stream?.endAfterHeaders === false &&
        raw.headers['content-length'] === undefined && raw.headers['transfer-encoding'] === undefined) {
        raw.headers['transfer-encoding'] = 'chunked'
      }
      done()
    })
  }

  const hsts = opts.hsts ?? DEFAULTS.hsts
  if (hsts !== false) {
    fastify.addHook('onSend', (request, reply, payload, done) => {
      if (request.listenerScheme === 'https' && !reply.hasHeader('strict-transport-security')) {
        reply.header('strict-transport-security', hsts)
      }
      done(null, payload)
    })
  }

  // Node's server.close() waits for every HTTP/2 session, and browsers keep theirs open long after
  // the last request; Fastify's forceCloseConnections ends idle HTTP/1.1 connections, not sessions.
  // GOAWAY is HTTP/2's graceful close: no new streams, those in flight (uploads) finish.
  const sessions = new Set<ServerHttp2Session>()
  fastify.server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  fastify.addHook('preClose', (done) => {
    for (const session of sessions) session.close()
    done()
  })

  const files = opts.certificateFiles
  const server = fastify.server as unknown as Partial<TlsServer>
  if (opts.certificate === undefined || typeof server.setSecureContext !== 'function') return
  // setSecureContext() replaces the whole context, so each reload passes the other file's content too
  let pair = opts.certificate
  let ca = opts.clientCa
  const install = (): void => {
    server.setSecureContext?.({ ...TLS_CONTEXT_OPTIONS, cert: pair.cert, key: pair.key, ...(ca === undefined ? {} : { ca }) })
    opts.onServed?.(pair.cert)
  }
  if (files !== undefined) {
    const watcher = watchCertificatePair(files, pair, next => {
      pair = next
      install()
      fastify.log.info({ certFile: files.certFile }, 'certificate reloaded; new connections use it')
    }, error => {
      fastify.log.error({ err: { message: error.message } }, 'new certificate refused; the previous one stays in service')
    }, opts.reloadInterval)
    fastify.addHook('onClose', async () => watcher.close())
  }
  opts.acme?.onCertificate(next => {
    pair = next
    install()
  })
  const caFile = opts.clientCaFile
  if (caFile !== undefined && ca !== undefined) {
    const watcher = watchClientCa(caFile, ca, next => {
      // the new context has new session-ticket keys: no client resumes a session verified
      // against the previous CA (test/access-key-client-certificate.test.ts)
      ca = next
      install()
      fastify.log.info({ clientCaFile: caFile }, 'client CA file reloaded; new connections are checked against it')
    }, error => {
      fastify.log.error({ err: { message: error.message } }, 'new client CA file refused; the previous one stays in service')
    }, opts.reloadInterval)
    fastify.addHook('onClose', async () => watcher.close())
  }
}, { name: 'immich-proxy-tls', fastify: '5.x' })
