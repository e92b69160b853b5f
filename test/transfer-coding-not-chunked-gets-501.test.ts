import t from 'tap'
import { rawExchange, startProxy, startUpstream } from './helper.js'

// Only chunked is a transfer coding a proxy may pass on (RFC 9112 §6.1, §7): any other coding
// would reach Immich decoded as chunked with the coding silently dropped. nginx answers 501.
t.test('a transfer coding other than a lone chunked gets 501 and nothing reaches Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => { req.resume().on('end', () => res.end('ok')) })
  const proxy = await startProxy(t, upstream.url)
  const body = '5\r\nhello\r\n0\r\n\r\n'

  for (const codings of [['gzip, chunked'], ['deflate,chunked'], ['gzip', 'chunked'], ['identity, chunked']]) {
    const head = ['POST /api/assets HTTP/1.1', 'Host: immich.test', ...codings.map(coding => `Transfer-Encoding: ${coding}`), '', ''].join('\r\n')
    const answer = await rawExchange(proxy.port, head + body)
    t.match(answer, /^HTTP\/1\.1 501 /, `${codings.join(' + ')}: 501`)
    t.match(answer, /\r\nconnection: close\r\n/i, `${codings.join(' + ')}: the connection is closed`)
  }
  // chunked applied twice is malformed framing: Node's parser answers it before the proxy sees it
  const twice = await rawExchange(proxy.port, `POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nTransfer-Encoding: chunked, chunked\r\n\r\n${body}`)
  t.match(twice, /^HTTP\/1\.1 400 /, 'chunked, chunked: 400')
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')

  for (const coding of ['chunked', 'Chunked', 'CHUNKED']) {
    const answer = await rawExchange(proxy.port, `POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n${body}`)
    t.match(answer, /^HTTP\/1\.1 200 /, `${coding} alone is forwarded`)
  }
  t.equal(upstream.requests.length, 3)
})

// HTTP/1.0 has no transfer codings: a 1.0 hop in front reads such a body by its length or to
// the connection's end, and would frame what follows differently (RFC 9112 §6.1)
t.test('an HTTP/1.0 request that says chunked gets 400, and the connection ends', async t => {
  const upstream = await startUpstream(t, (req, res) => { req.resume().on('end', () => res.end('ok')) })
  const proxy = await startProxy(t, upstream.url)
  const answer = await rawExchange(proxy.port, 'POST /api/assets HTTP/1.0\r\nHost: immich.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /api/server/ping HTTP/1.0\r\nHost: immich.test\r\n\r\n')
  t.match(answer, /^HTTP\/1\.1 400 /, '400')
  t.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer: the request after it is not served')
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
})
