import t from 'tap'
import { createSecureServer } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// RFC 8441: a server that sends SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 invites WebSockets over
// HTTP/2 streams. Firefox then opens Immich's socket that way, which the proxy does not carry, and
// the timeline never gets live updates (Immich issue 31156). The setting must stay unsent.
t.test('the HTTP/2 listener never advertises extended CONNECT', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })

  const session = await h2Session(t, proxy.url, certificate.cert)
  t.equal(session.alpnProtocol, 'h2')
  t.not(session.remoteSettings.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL is not 1')
  t.equal((await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping' })).status, 200, 'the session serves requests')
  t.not(session.remoteSettings.enableConnectProtocol, true, 'nor after the first exchange')

  t.equal(upstream.requests.length, 1)
})

t.test('control: the same probe sees the setting on a server that does send it', async t => {
  const certificate = await makeCertificate()
  const server = createSecureServer({ cert: certificate.cert, key: certificate.key, settings: { enableConnectProtocol: true } })
  server.on('stream', stream => stream.respond({ ':status': 200 }, { endStream: true }))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const session = await h2Session(t, `https://127.0.0.1:${(server.address() as AddressInfo).port}`, certificate.cert)
  t.equal(session.remoteSettings.enableConnectProtocol, true)
})
