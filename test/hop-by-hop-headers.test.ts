// RFC 9110 §7.6.1: Connection, the fields it names, and the connection-specific fields a sender
// may forget to name there belong to one hop; Immich and the client never see the other's.
import t from 'tap'
import { rawExchange, startProxy, startUpstream } from './helper.js'

/** Header lines of a raw HTTP/1.1 response, as [lower-case name, value] pairs in order. */
function headerLines (response: string): Array<[string, string]> {
  const head = response.slice(0, response.indexOf('\r\n\r\n'))
  return head.split('\r\n').slice(1).map(line => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  })
}

t.test('hop-by-hop request headers do not reach Immich; the rest do', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end())
  const proxy = await startProxy(t, upstream.url)

  const response = await rawExchange(proxy.port, [
    'GET /api/server/version HTTP/1.1',
    'Host: immich.test',
    'Connection: close, X-Named-Hop',
    'X-Named-Hop: private to this hop',
    'Keep-Alive: timeout=30',
    'Proxy-Connection: keep-alive',
    'TE: trailers',
    'Trailer: X-Checksum',
    'Upgrade: websocket',
    'Proxy-Authorization: Basic dXNlcjpwYXNz',
    'X-End-To-End: kept',
    '', ''
  ].join('\r\n'))
  t.match(response, /^HTTP\/1\.1 200 /, 'an Upgrade header without Connection: upgrade is a normal request')

  const received = upstream.requests[0].headers
  for (const name of ['x-named-hop', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization']) {
    t.notOk(name in received, `${name} stays on the client's hop`)
  }
  t.not(received.connection ?? '', /x-named-hop|close/i, "the client's Connection is not forwarded")
  t.equal(received['x-end-to-end'], 'kept')
})

t.test("Immich's hop-by-hop response headers do not reach the client; the rest do", async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, {
      Connection: 'x-secret',
      'x-secret': '1',
      'Keep-Alive': 'timeout=5',
      'Proxy-Connection': 'keep-alive',
      'x-kept': 'yes',
      'content-type': 'text/plain',
      'content-length': '2'
    })
    res.end('ok')
  })
  const proxy = await startProxy(t, upstream.url)

  const response = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
  t.match(response, /^HTTP\/1\.1 200 /)
  const lines = headerLines(response)
  const names = lines.map(([name]) => name)
  t.notOk(names.includes('x-secret'), 'a field named by Connection is dropped')
  t.notOk(names.includes('proxy-connection'))
  t.same(lines.filter(([name]) => name === 'connection'), [['connection', 'close']], "only the proxy's own Connection, for its own hop")
  t.notOk(lines.some(([name, value]) => name === 'keep-alive' && value === 'timeout=5'), "Immich's Keep-Alive is not passed on")
  t.same(lines.filter(([name]) => name === 'x-kept'), [['x-kept', 'yes']])
  t.same(lines.filter(([name]) => name === 'content-length'), [['content-length', '2']])
  t.ok(response.endsWith('\r\n\r\nok'), 'body intact')
})
