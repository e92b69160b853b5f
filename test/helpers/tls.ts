// Real TLS for the HTTPS tests: certificates generated in the test (never checked in), the proxy
// built as src/server.ts builds it with its log captured, and clients that trust only the
// generated certificate, so every handshake is verified as a user's client would verify it.
import type { FastifyInstance } from 'fastify'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls'
import { generate } from 'selfsigned'
import type { Test } from 'tap'
import { buildRedirectServer } from '../../src/build.js'
import { parseConfig } from '../../src/config.js'

export interface TestCertificate {
  cert: string
  key: string
  /** SHA-256 fingerprint as getPeerCertificate() reports it (AA:BB:…). */
  fingerprint256: string
}

/**
 * A self-signed server certificate for 127.0.0.1 and localhost. EC P-256 by default (fast to
 * make); `rsa` gives RSA 2048, what most Let's Encrypt users still have. Valid for `validDays`.
 */
export async function makeCertificate (commonName = 'immich.test', keyType: 'ec' | 'rsa' = 'ec', validDays = 30): Promise<TestCertificate> {
  const generated = await generate([{ name: 'commonName', value: commonName }], {
    keyType,
    ...(keyType === 'ec' ? { curve: 'P-256' as const } : { keySize: 2048 }),
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + validDays * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 2, value: 'immich.test' }, { type: 7, ip: '127.0.0.1' }] }
    ]
  })
  return {
    cert: generated.cert,
    key: generated.private,
    fingerprint256: new X509Certificate(generated.cert).fingerprint256
  }
}

/** A certificate authority for client certificates (what TLS_CLIENT_CA_FILE holds). */
export async function makeCa (commonName = 'Immich test CA'): Promise<{ cert: string, key: string }> {
  const generated = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 30 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
    ]
  })
  return { cert: generated.cert, key: generated.private }
}

/**
 * A user's client certificate signed by `ca`, valid from a day ago for 30 days unless `validity`
 * says otherwise (an expired one: both dates in the past).
 */
export async function makeClientCertificate (
  ca: { cert: string, key: string },
  commonName = 'phone',
  validity: { notBeforeDate?: Date, notAfterDate?: Date } = {}
): Promise<{ cert: string, key: string }> {
  const generated = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: validity.notBeforeDate ?? new Date(Date.now() - 24 * 3600 * 1000),
    notAfterDate: validity.notAfterDate ?? new Date(Date.now() + 30 * 24 * 3600 * 1000),
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true }
    ]
  })
  return { cert: generated.cert, key: generated.private }
}

export interface CertificateFiles {
  certFile: string
  keyFile: string
}

/** Writes the pair as fullchain.pem / privkey.pem in `dir`. */
export function writeCertificateFiles (dir: string, certificate: TestCertificate): CertificateFiles {
  const certFile = join(dir, 'fullchain.pem')
  const keyFile = join(dir, 'privkey.pem')
  writeFileSync(certFile, certificate.cert)
  writeFileSync(keyFile, certificate.key)
  return { certFile, keyFile }
}

/** The plain-HTTP listener (HTTP_PORT) as src/build.ts builds it, on 127.0.0.1:0. */
export async function startRedirectListener (t: Test, upstream: string, env: Record<string, string>): Promise<{ app: FastifyInstance, port: number }> {
  const config = parseConfig({ UPSTREAM_URL: upstream, LOG_LEVEL: 'silent', ...env })
  const server = await buildRedirectServer(config)
  if (server === undefined) throw new Error('HTTP_PORT is not set: no redirect listener')
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  return { app: server, port: (server.server.address() as AddressInfo).port }
}

export interface Handshake {
  fingerprint256: string
  protocol: string | null
  alpnProtocol: string | false | null
}

/**
 * One TLS handshake on a fresh connection: what certificate, TLS version and ALPN protocol the
 * server chose. Rejects when the handshake fails (the error says why).
 */
export async function handshake (port: number, options: ConnectionOptions = {}): Promise<Handshake> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ...options })
  try {
    await once(socket, 'secureConnect')
    const peer: PeerCertificate = socket.getPeerCertificate()
    return { fingerprint256: peer.fingerprint256, protocol: socket.getProtocol(), alpnProtocol: socket.alpnProtocol }
  } finally {
    socket.destroy()
  }
}

/** An HTTP/2 session that trusts `ca` only; closed when the test ends. */
export async function h2Session (t: Test, url: string, ca: string): Promise<ClientHttp2Session> {
  const session = http2Connect(url, { ca, servername: 'localhost' })
  t.teardown(() => { session.destroy() })
  await once(session, 'remoteSettings')
  return session
}

export interface H2Response {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/**
 * One HTTP/2 request. `body`: undefined sends the headers with END_STREAM (a GET); a Buffer or
 * an async iterable is written as DATA frames, with no content-length unless `headers` has one.
 */
export async function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | AsyncIterable<Buffer>): Promise<H2Response> {
  const stream = session.request(headers, { endStream: body === undefined })
  const response = once(stream, 'response') as Promise<[IncomingHttpHeaders]>
  if (Buffer.isBuffer(body)) stream.end(body)
  else if (body !== undefined) {
    // written alongside the response: a server that answers early (or never reads) must show
    // as a wrong answer, not as a writer waiting forever for flow-control credit
    const closed = once(stream, 'close')
    const pump = async (): Promise<void> => {
      for await (const chunk of body) {
        if (stream.destroyed) return
        if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), closed])
      }
      if (!stream.destroyed) stream.end()
    }
    pump().catch((error: Error) => stream.destroy(error))
  }
  const [responseHeaders] = await response
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return { status: Number(responseHeaders[':status']), headers: responseHeaders, body: Buffer.concat(chunks) }
}
