import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, handshake, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

/** The system curl over TLS, trusting only `caFile`: the body and the HTTP version it used. */
async function curl (args: string[]): Promise<{ body: string, version: string }> {
  const marker = '\n--curl--'
  const out = await new Promise<string>((resolve, reject) => {
    execFile('/usr/bin/curl', ['--silent', '--show-error', '--write-out', `${marker}%{http_version}`, ...args],
      { timeout: 30_000 }, (error, stdout) => error === null ? resolve(stdout) : reject(error))
  })
  const at = out.lastIndexOf(marker)
  return { body: out.slice(0, at), version: out.slice(at + marker.length) }
}

async function setUp (t: Test, env: Record<string, string> = {}) {
  const certificate = await makeCertificate()
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, certificate)
  const upstream = await startUpstream(t, (req, res) => res.end(`immich saw ${req.method ?? ''} ${req.url ?? ''}`))
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, ...env })
  return { certificate, files, proxy }
}

t.test('one TLS port answers HTTP/2 and HTTP/1.1 clients, chosen by ALPN', async t => {
  const { certificate, files, proxy } = await setUp(t)

  t.equal((await handshake(proxy.port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpnProtocol, 'h2', 'a browser offering both gets h2')
  t.equal((await handshake(proxy.port, { ALPNProtocols: ['http/1.1'] })).alpnProtocol, 'http/1.1', 'an HTTP/1.1-only client gets http/1.1')

  const session = await h2Session(t, proxy.url, certificate.cert)
  const viaNodeH2 = await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping?client=node-http2' })
  t.equal(viaNodeH2.status, 200)
  t.equal(viaNodeH2.body.toString(), 'immich saw GET /api/server/ping?client=node-http2')

  const undiciH2 = new Client(proxy.url, { allowH2: true, connect: { ca: certificate.cert, servername: 'localhost' } })
  t.teardown(() => undiciH2.close())
  const viaUndici = await undiciH2.request({ method: 'GET', path: '/api/server/ping?client=undici' })
  t.equal(viaUndici.statusCode, 200)
  t.equal(await viaUndici.body.text(), 'immich saw GET /api/server/ping?client=undici')

  const undiciH1 = new Client(proxy.url, { connect: { ca: certificate.cert, servername: 'localhost' } })
  t.teardown(() => undiciH1.close())
  const viaUndiciH1 = await undiciH1.request({ method: 'GET', path: '/api/server/ping?client=undici-h1' })
  t.equal(await viaUndiciH1.body.text(), 'immich saw GET /api/server/ping?client=undici-h1')

  const curlH2 = await curl(['--http2', '--cacert', files.certFile, `${proxy.url}/api/server/ping?client=curl-h2`])
  t.same(curlH2, { body: 'immich saw GET /api/server/ping?client=curl-h2', version: '2' }, 'curl --http2 speaks HTTP/2')
  const curlH1 = await curl(['--http1.1', '--cacert', files.certFile, `${proxy.url}/api/server/ping?client=curl-h1`])
  t.same(curlH1, { body: 'immich saw GET /api/server/ping?client=curl-h1', version: '1.1' }, 'curl --http1.1 speaks HTTP/1.1')

  t.same(proxy.versions, ['2.0', '2.0', '1.1', '2.0', '1.1'], 'each client got the version it asked for, on the same port')
})

t.test('HTTP2=false: ALPN offers only http/1.1, and HTTP/2 clients fall back to it', async t => {
  const { certificate, files, proxy } = await setUp(t, { HTTP2: 'false' })

  t.equal((await handshake(proxy.port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpnProtocol, 'http/1.1', 'h2 is not chosen even when offered first')
  await t.rejects(handshake(proxy.port, { ALPNProtocols: ['h2'] }), { code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' }, 'an h2-only client is refused')

  const curlH2 = await curl(['--http2', '--cacert', files.certFile, `${proxy.url}/api/server/ping`])
  t.same(curlH2, { body: 'immich saw GET /api/server/ping', version: '1.1' }, 'curl --http2 falls back to HTTP/1.1')
  const undiciH2 = new Client(proxy.url, { allowH2: true, connect: { ca: certificate.cert, servername: 'localhost' } })
  t.teardown(() => undiciH2.close())
  const res = await undiciH2.request({ method: 'GET', path: '/api/server/ping' })
  t.equal(await res.body.text(), 'immich saw GET /api/server/ping')
  t.same(proxy.versions, ['1.1', '1.1'])
})
