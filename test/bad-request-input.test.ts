// Requests that could be read two ways (request smuggling) or that no server should accept are
// refused by the proxy with a 4xx; not one of them reaches Immich.
import t from 'tap'
import { rawExchange, startProxy, startUpstream } from './helper.js'

const cases: Array<{ name: string, head: string, status: number }> = [
  {
    name: 'Content-Length together with Transfer-Encoding',
    head: 'POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: immich.test\r\n\r\n',
    status: 400
  },
  {
    name: 'two different Content-Length values',
    head: 'POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    status: 400
  },
  {
    name: 'a Transfer-Encoding that does not end in chunked',
    head: 'POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    status: 400
  },
  {
    name: 'a control character in a header value',
    head: 'GET /api/users/me HTTP/1.1\r\nHost: immich.test\r\nX-Immich-Custom: a\u0001b\r\n\r\n',
    status: 400
  },
  {
    name: 'a space in a header name',
    head: 'GET /api/users/me HTTP/1.1\r\nHost: immich.test\r\nX Custom: value\r\n\r\n',
    status: 400
  },
  {
    name: 'a bare LF inside a header value',
    head: 'GET /api/users/me HTTP/1.1\r\nHost: immich.test\r\nX-Custom: a\nX-Injected: b\r\n\r\n',
    status: 400
  },
  {
    name: "a header block larger than Node's 16 KiB limit",
    head: `GET /api/users/me HTTP/1.1\r\nHost: immich.test\r\nCookie: big=${'a'.repeat(17 * 1024)}\r\n\r\n`,
    status: 431
  },
  {
    name: 'a request line with an extra part',
    head: 'GET /api/server/ping HTTP/1.1 extra\r\nHost: immich.test\r\n\r\n',
    status: 400
  },
  {
    name: 'a request line that is not HTTP',
    head: 'HELLO\r\n\r\n',
    status: 400
  },
  {
    name: 'an unknown HTTP version',
    head: 'GET /api/server/ping HTTP/9.9\r\nHost: immich.test\r\n\r\n',
    status: 400
  }
]

t.test('malformed requests get a 4xx and never reach Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('reached Immich'))
  const proxy = await startProxy(t, upstream.url)

  for (const { name, head, status } of cases) {
    const response = await rawExchange(proxy.port, head)
    t.equal(response.slice(0, 12), `HTTP/1.1 ${status}`, name)
    const body = response.slice(response.indexOf('\r\n\r\n') + 4)
    t.equal(JSON.parse(body).statusCode, status, `${name}: a short JSON body, not Immich's answer`)
  }
  t.same(upstream.requests.map(req => req.url), [], 'Immich received nothing')

  // the proxy is unharmed and a good request still goes through
  const good = await rawExchange(proxy.port, 'GET /api/server/ping HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
  t.match(good, /^HTTP\/1\.1 200 [^]*reached Immich$/)
  t.equal(upstream.requests.length, 1)
})
