import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createServer, type SecureVersion } from 'node:tls'
import { startProxy, startUpstream } from './helper.js'
import { handshake, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// The client below offers exactly one version; SECLEVEL=0 lets its OpenSSL offer the old ones,
// so a failure is the server's refusal, not the client's (the control shows the client can).
function only (version: SecureVersion) {
  return { minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' }
}

t.test('TLS 1.0 and 1.1 are refused with a protocol_version alert; 1.2 and 1.3 are accepted', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  for (const http2 of ['true', 'false']) {
    const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, HTTP2: http2 })
    for (const old of ['TLSv1', 'TLSv1.1'] as const) {
      await t.rejects(handshake(proxy.port, only(old)), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, `HTTP2=${http2}: ${old} refused`)
    }
    for (const current of ['TLSv1.2', 'TLSv1.3'] as const) {
      const done = await handshake(proxy.port, only(current))
      t.equal(done.protocol, current, `HTTP2=${http2}: ${current} accepted`)
      t.equal(done.fingerprint256, certificate.fingerprint256)
    }
  }
})

t.test('control: the same client completes TLS 1.0 and 1.1 with a server that allows them', async t => {
  const certificate = await makeCertificate()
  const server = createServer({ cert: certificate.cert, key: certificate.key, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, socket => socket.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  t.equal((await handshake(port, only('TLSv1'))).protocol, 'TLSv1')
  t.equal((await handshake(port, only('TLSv1.1'))).protocol, 'TLSv1.1')
})
