import t from 'tap'
import { rawExchange, startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { rawUpgrade, startWsUpstream } from './helpers/websocket.js'

// RFC 9112 §3.2.2: a server receiving an absolute-form target ignores Host and takes the
// target's authority; Immich gets the origin form, as nginx sends it.
const get = (target: string, host = 'photos.example', more = ''): string =>
  `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${more}Connection: close\r\n\r\n`

t.test('an absolute-form target reaches Immich as its path, with the target\'s host', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url)

  const cases: Array<[string, string, string]> = [
    ['http://evil.example/api/assets?size=preview&a=%2F', '/api/assets?size=preview&a=%2F', 'evil.example'],
    ['HTTP://Evil.Example:8080/x', '/x', 'Evil.Example:8080'],
    ['https://evil.example', '/', 'evil.example'],
    ['http://evil.example?q=1', '/?q=1', 'evil.example'],
    ['http://[::1]:2283/.well-known/immich', '/.well-known/immich', '[::1]:2283']
  ]
  for (const [target, path, host] of cases) {
    const answer = await rawExchange(proxy.port, get(target))
    t.match(answer, /^HTTP\/1\.1 200 /, target)
    const seen = upstream.requests.at(-1)
    t.equal(seen?.url, path, `${target}: Immich gets the origin form`)
    t.equal(seen?.headers.host, host, `${target}: Host is the target's authority`)
    t.equal(seen?.headers['x-forwarded-host'], host, `${target}: so is X-Forwarded-Host`)
  }

  const before = upstream.requests.length
  for (const target of ['http://user:pw@evil.example/x', 'http:///x', 'ftp://evil.example/x', 'http://evil.example:80:80/x']) {
    const answer = await rawExchange(proxy.port, get(target))
    t.match(answer, /^HTTP\/1\.1 400 /, `${target}: 400`)
  }
  t.equal(upstream.requests.length, before, 'nothing malformed reached Immich')
})

t.test('the access-key guard sees the origin-form path', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'correct-horse-battery-staple' })
  const html = 'Accept: text/html\r\n'
  const origin = await rawExchange(proxy.port, get('/api/server/ping', 'photos.example', html))
  const absolute = await rawExchange(proxy.port, get('http://photos.example/api/server/ping', 'photos.example', html))
  t.equal(absolute.split('\r\n')[0], origin.split('\r\n')[0], 'the same refusal as for the origin form')
  t.equal(absolute.split('\r\n\r\n')[1], origin.split('\r\n\r\n')[1], 'an API path gets the API refusal, not the unlock page')
  t.equal(upstream.requests.length, 0)
})

t.test('a WebSocket upgrade with an absolute-form target reaches Immich in origin form', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await startProxy(t, upstream.url)
  const { head, socket } = await rawUpgrade(t, proxy.port, [
    'GET http://evil.example/api/socket.io/?EIO=4&transport=websocket HTTP/1.1', 'Host: photos.example',
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''
  ].join('\r\n'))
  socket.destroy()
  t.match(head, /^HTTP\/1\.1 101 /)
  t.equal(upstream.upgrades[0].url, '/api/socket.io/?EIO=4&transport=websocket')
  t.equal(upstream.upgrades[0].headers.host, 'evil.example')
})

t.test('HTTP/2: a :path that is not a path is refused and nothing reaches Immich', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const session = await h2Session(t, proxy.url, certificate.cert)
  // RFC 9113 §8.3.1: :path carries the path and query; the authority has a field of its own
  // (Node's HTTP/2 layer resets such a stream as malformed before any hook runs)
  const answer = await h2Request(session, { ':method': 'GET', ':path': 'http://evil.example/x', ':authority': 'photos.example' }).catch((error: Error) => error)
  t.ok(answer instanceof Error ? /PROTOCOL_ERROR/.test(answer.message) : answer.status === 400, 'a stream error or 400')
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
})

t.test('an asterisk-form target (OPTIONS *) is the proxy\'s to answer: 400, and Immich is not blamed', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await startProxy(t, upstream.url, { LOG_LEVEL: 'info' })
  const log = proxy.log
  for (const method of ['OPTIONS', 'GET']) {
    const answer = await rawExchange(proxy.port, `${method} * HTTP/1.1\r\nHost: photos.example\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 400 /, `${method} *: 400`)
  }
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
  t.notMatch(log.text, /upstream request failed/, 'no upstream failure logged')
})
