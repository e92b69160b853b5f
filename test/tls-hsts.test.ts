import t, { type Test } from 'tap'
import { Client, request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// Immich answers /own-hsts with a policy of its own, everything else without one
async function setUp (t: Test, env: Record<string, string> = {}) {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/own-hsts') res.setHeader('strict-transport-security', 'max-age=60')
    res.end('ok')
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, ...env })
  const h1 = new Client(proxy.url, { connect: { ca: certificate.cert, servername: 'localhost' } })
  t.teardown(() => h1.close())
  const session = await h2Session(t, proxy.url, certificate.cert)
  return {
    async h1 (path: string) {
      const res = await h1.request({ method: 'GET', path })
      await res.body.dump()
      return res.headers['strict-transport-security']
    },
    async h2 (path: string) {
      return (await h2Request(session, { ':method': 'GET', ':path': path })).headers['strict-transport-security']
    }
  }
}

t.test('HTTPS responses carry a one-year HSTS by default, HTTP/1.1 and HTTP/2 alike', async t => {
  const client = await setUp(t)
  t.equal(await client.h1('/api/server/ping'), 'max-age=31536000')
  t.equal(await client.h2('/api/server/ping'), 'max-age=31536000')
  t.equal(await client.h1('/api/does-not-exist?x=1'), 'max-age=31536000', 'on every path')
})

t.test('Immich\'s own Strict-Transport-Security is left alone', async t => {
  const client = await setUp(t)
  t.equal(await client.h1('/own-hsts'), 'max-age=60')
  t.equal(await client.h2('/own-hsts'), 'max-age=60')
})

t.test('HSTS=off sends none; a configured value is sent as written', async t => {
  const off = await setUp(t, { HSTS: 'off' })
  t.equal(await off.h1('/api/server/ping'), undefined)
  t.equal(await off.h2('/api/server/ping'), undefined)
  t.equal(await off.h1('/own-hsts'), 'max-age=60', 'Immich\'s own still passes')
  const preload = await setUp(t, { HSTS: 'max-age=63072000; includeSubDomains; preload' })
  t.equal(await preload.h2('/api/server/ping'), 'max-age=63072000; includeSubDomains; preload')
})

t.test('plain HTTP never gets HSTS, where it would mean nothing', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { HSTS: 'max-age=31536000' })
  const res = await request(`${proxy.url}/api/server/ping`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(res.headers['strict-transport-security'], undefined)
})
