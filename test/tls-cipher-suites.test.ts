import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:tls'
import { startProxy, startUpstream } from './helper.js'
import { handshake, makeCertificate, writeCertificateFiles, type TestCertificate } from './helpers/tls.js'

// OpenSSL 3.0 (Node 20) names the alert SSLV3_…, OpenSSL 3.5 (Node 26) SSL/TLS_…
const HANDSHAKE_FAILURE = /^ERR_SSL_(SSLV3|SSL\/TLS)_ALERT_HANDSHAKE_FAILURE$/

// TLS 1.2 suites by certificate type: the forward-secret AEAD ones Mozilla's intermediate
// profile serves, and ones a client may still offer that it does not (CBC with SHA-1 or SHA-384
// MACs; RSA key exchange, which has no forward secrecy).
const SUITES = {
  ec: {
    good: ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
    weak: ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384']
  },
  rsa: {
    good: ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'],
    weak: ['ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', 'AES128-GCM-SHA256', 'AES256-SHA']
  }
} as const

/** A TLS server that serves every suite OpenSSL has: shows the client really offers the weak ones. */
async function permissiveServer (t: Test, certificate: TestCertificate): Promise<number> {
  const server = createServer({ cert: certificate.cert, key: certificate.key, ciphers: 'ALL:@SECLEVEL=0' }, socket => socket.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

for (const keyType of ['ec', 'rsa'] as const) {
  t.test(`${keyType.toUpperCase()} certificate: over TLS 1.2 only forward-secret AEAD suites are served`, async t => {
    const certificate = await makeCertificate('immich.test', keyType)
    const files = writeCertificateFiles(t.testdir(), certificate)
    const upstream = await startUpstream(t, (req, res) => res.end('ok'))
    const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
    const control = await permissiveServer(t, certificate)
    for (const suite of SUITES[keyType].good) {
      t.equal((await handshake(proxy.port, { maxVersion: 'TLSv1.2', ciphers: suite })).protocol, 'TLSv1.2', `${suite} served`)
    }
    for (const suite of SUITES[keyType].weak) {
      t.equal((await handshake(control, { maxVersion: 'TLSv1.2', ciphers: suite })).protocol, 'TLSv1.2', `control: the client can do ${suite}`)
      await t.rejects(handshake(proxy.port, { maxVersion: 'TLSv1.2', ciphers: suite }), { code: HANDSHAKE_FAILURE }, `${suite} refused`)
    }
  })
}
