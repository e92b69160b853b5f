import t from 'tap'
import { rawExchange, startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

t.test('an HTTP/1.0 request without Host reaches Immich with the address the client connected to', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url)
  const answer = await rawExchange(proxy.port, 'GET /api/server/ping HTTP/1.0\r\n\r\n')
  t.match(answer, /^HTTP\/1\.1 200 /)
  const seen = upstream.requests[0].headers
  t.equal(seen.host, `127.0.0.1:${proxy.port}`, "the listener's address and port, never Immich's")
  t.equal(seen['x-forwarded-host'], `127.0.0.1:${proxy.port}`)
})

t.test('two Host fields get 400 and nothing reaches Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url)
  for (const [first, second] of [['photos.example', 'evil.example'], ['photos.example', 'photos.example']]) {
    const answer = await rawExchange(proxy.port, `GET /api/server/ping HTTP/1.1\r\nHost: ${first}\r\nhost: ${second}\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 400 /, `Host: ${first} + Host: ${second}`)
  }
  t.equal(upstream.requests.length, 0)
})

t.test('HTTP/2: a host field that disagrees with :authority gets 400', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const session = await h2Session(t, proxy.url, certificate.cert)

  const differ = await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping', ':authority': 'photos.example', host: 'evil.example' })
  t.equal(differ.status, 400, 'RFC 9113 §8.3.1: a malformed request')
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')

  const same = await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping', ':authority': 'photos.example', host: 'Photos.Example' })
  t.equal(same.status, 200, 'the same host (names are case-insensitive) is fine')
  t.equal(upstream.requests[0].headers.host, 'photos.example', ':authority is the Host')
})

t.test('a Host that is not a host name or address gets 400 and nothing reaches Immich; an empty one names none', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url)
  for (const host of ['a.example, b.example', 'a .example', 'a.example/x', 'u@a.example', 'a.example:99999', '[::1']) {
    const answer = await rawExchange(proxy.port, `GET /api/server/ping HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 400 /, `Host: ${host}`)
  }
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
  for (const host of ['immich_server:2283', '[::1]:8080', 'Photos.Example']) {
    const answer = await rawExchange(proxy.port, `GET /api/server/ping HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 200 /, `Host: ${host} passes`)
  }
  const empty = await rawExchange(proxy.port, 'GET /api/server/ping HTTP/1.0\r\nHost:\r\n\r\n')
  t.match(empty, /^HTTP\/1\.1 200 /)
  t.equal(upstream.requests.at(-1)?.headers.host, `127.0.0.1:${proxy.port}`, "an empty Host: the listener's address, as with none")
})

t.test('HTTP/2: an :authority with user information gets 400', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const session = await h2Session(t, proxy.url, certificate.cert)
  // RFC 9113 §8.3.1: no userinfo in :authority. The proxy answers 400; newer nghttp2 (Node 26)
  // refuses the header field itself with a stream error before the proxy sees the request
  const outcome = await h2Request(session, { ':method': 'GET', ':path': '/api/server/ping', ':authority': 'u:p@photos.example' })
    .then(answer => answer.status, (error: NodeJS.ErrnoException) => error.code)
  t.ok(outcome === 400 || outcome === 'ERR_HTTP2_STREAM_ERROR', `refused: ${String(outcome)}`)
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
})
