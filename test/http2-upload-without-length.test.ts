import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { startProxy, startUpstream } from './helper.js'
import { Digest, digestOf, generatedBody } from './helpers/bodies.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// HTTP/2 has no Transfer-Encoding: a client streaming a body of unknown size (the CLI piping a
// file, fetch() with a ReadableStream) sends HEADERS without content-length, then DATA frames.
// Fastify takes such a request for bodiless; plugins/tls/tls.ts marks it so the body is forwarded.
const SIZE = 8 * 1024 * 1024 + 3

async function setUp (t: Test) {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const bodies: Array<{ url?: string, headers: Record<string, unknown>, sha1: string, bytes: number, complete: boolean }> = []
  const upstream = await startUpstream(t, (req, res) => {
    digestOf(req).then(digest => {
      bodies.push({ url: req.url, headers: req.headers, sha1: digest.sha1(), bytes: digest.bytes, complete: req.complete })
      res.end(JSON.stringify({ bytes: digest.bytes }))
    }, () => res.destroy())
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const session = await h2Session(t, proxy.url, certificate.cert)
  return { bodies, session, upstream }
}

t.test('an HTTP/2 upload with neither Content-Length nor Content-Type reaches Immich whole', async t => {
  const { bodies, session } = await setUp(t)
  const sent = new Digest()
  const res = await h2Request(session, { ':method': 'POST', ':path': '/api/assets' }, generatedBody(SIZE, sent))
  t.equal(res.status, 200)
  t.same(JSON.parse(res.body.toString()), { bytes: SIZE }, 'Immich counted every byte')
  t.equal(bodies.length, 1)
  t.equal(bodies[0].bytes, SIZE)
  t.equal(bodies[0].sha1, sent.sha1(), 'byte for byte')
  t.equal(bodies[0].complete, true)
  t.equal(bodies[0].headers['content-length'], undefined, 'no length was invented')
  t.equal(bodies[0].headers['content-type'], undefined, 'no type was invented')
  t.equal(bodies[0].headers['transfer-encoding'], 'chunked', 'sent to Immich as HTTP/1.1 sends a body of unknown length')
})

t.test('with a Content-Type and no length, and with the first DATA frame late', async t => {
  const { bodies, session } = await setUp(t)
  const res = await h2Request(session, { ':method': 'PUT', ':path': '/api/assets/1/original', 'content-type': 'image/jpeg' }, (async function * () {
    await sleep(300)
    yield Buffer.from('late ')
    await sleep(300)
    yield Buffer.from('jpeg bytes')
  })())
  t.equal(res.status, 200)
  t.equal(bodies[0].bytes, 15)
  t.equal(bodies[0].headers['content-type'], 'image/jpeg')
})

t.test('a request that ends with its headers still goes without a body', async t => {
  const { bodies, session, upstream } = await setUp(t)
  const res = await h2Request(session, { ':method': 'POST', ':path': '/api/auth/logout' })
  t.equal(res.status, 200)
  t.equal(bodies[0].bytes, 0)
  t.equal(upstream.requests[0].headers['transfer-encoding'], undefined, 'not marked as carrying a body')
})

t.test('control: the same upload with a Content-Length', async t => {
  const { bodies, session } = await setUp(t)
  const sent = new Digest()
  const res = await h2Request(session, { ':method': 'POST', ':path': '/api/assets', 'content-length': SIZE }, generatedBody(SIZE, sent))
  t.equal(res.status, 200)
  t.equal(bodies[0].sha1, sent.sha1())
  t.equal(bodies[0].headers['content-length'], String(SIZE))
})
