import t from 'tap'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

t.test('Immich hears https from HTTP/1.1 and HTTP/2 clients, and the HTTP/2 :authority as Host', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })

  const h1 = new Client(proxy.url, { connect: { ca: certificate.cert, servername: 'localhost' } })
  t.teardown(() => h1.close())
  const res = await h1.request({
    method: 'GET',
    path: '/api/server/ping',
    // a client's own claim is not believed: the peer is not a trusted proxy
    headers: { host: `localhost:${proxy.port}`, 'x-forwarded-proto': 'http' }
  })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const fromH1 = upstream.requests.at(-1)?.headers
  t.equal(fromH1?.['x-forwarded-proto'], 'https', 'HTTP/1.1 over TLS is https')
  t.equal(fromH1?.host, `localhost:${proxy.port}`, 'Host as the client sent it, port included')
  t.equal(fromH1?.['x-real-ip'], '127.0.0.1')

  const session = await h2Session(t, proxy.url, certificate.cert)
  const h2 = await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping', ':authority': `immich.test:${proxy.port}`, 'x-forwarded-proto': 'http' })
  t.equal(h2.status, 200)
  t.equal(h2.body.toString(), 'ok')
  const fromH2 = upstream.requests.at(-1)?.headers
  t.equal(fromH2?.['x-forwarded-proto'], 'https', 'HTTP/2 is https')
  t.equal(fromH2?.host, `immich.test:${proxy.port}`, 'Host is the :authority, port included')
  t.equal(fromH2?.['x-forwarded-host'], `immich.test:${proxy.port}`)
  t.equal(fromH2?.['x-real-ip'], '127.0.0.1')
  t.equal(fromH2?.['x-forwarded-for'], '127.0.0.1')
  t.notOk(Object.keys(fromH2 ?? {}).some(name => name.startsWith(':')), 'no HTTP/2 pseudo-header reached Immich')
  t.same(proxy.versions, ['1.1', '2.0'], 'one request of each version reached the listener')
})
