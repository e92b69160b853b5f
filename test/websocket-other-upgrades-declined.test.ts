// Immich's socket.io (engine.io) answers only WebSocket upgrades on its own path and ends any
// other upgraded connection after a second. So an `Upgrade: h2c` offer (curl --http2 on plain
// http) must not reach it as an upgrade: the proxy declines the offer and forwards an ordinary
// request, body included, while WebSocket upgrades are still tunnelled.
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io } from 'socket.io-client'
import { rawExchange, startProxy, text } from './helper.js'
import { rawUpgrade } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

t.test('an h2c offer becomes a plain request to Immich; WebSocket upgrades still tunnel', async t => {
  const requests: Array<{ req: IncomingMessage, body: string }> = []
  const http = createServer((req, res) => {
    text(req).then(body => {
      requests.push({ req, body })
      res.end(`${req.method ?? ''} ${body}`)
    }, () => res.destroy())
  })
  const server = new Server(http, { path: '/api/socket.io', transports: ['websocket'] })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await server.close() })
  const proxy = await startProxy(t, `http://127.0.0.1:${(http.address() as AddressInfo).port}`, { PROXY_TIMEOUT: '5s' })

  const body = '{"deviceAssetId":"IMG_0001.jpg"}'
  const response = await rawExchange(proxy.port, [
    'POST /api/assets HTTP/1.1',
    'Host: immich.test',
    'Connection: Upgrade, HTTP2-Settings, close',
    'Upgrade: h2c',
    'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA',
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
    '', ''
  ].join('\r\n'), Buffer.from(body))
  t.match(response, /^HTTP\/1\.1 200 /, 'Immich answered, the connection was not dropped')
  t.ok(response.endsWith(`POST ${body}`), 'with the body it was sent')
  t.equal(requests.length, 1)
  t.equal(requests[0].req.headers.upgrade, undefined, 'the h2c offer stayed at the proxy')
  t.equal(requests[0].req.headers['http2-settings'], undefined)

  // RFC 6455 handshakes are bodiless GETs: a POST offering websocket is an ordinary upload
  const offered = await rawUpgrade(t, proxy.port, [
    'POST /api/assets HTTP/1.1',
    'Host: immich.test',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Transfer-Encoding: chunked',
    '', `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
  ].join('\r\n'))
  t.match(offered.head, /^HTTP\/1\.1 200 /)
  t.equal(requests[1].body, body, 'the chunked body reached Immich')
  t.equal(requests[1].req.headers.upgrade, undefined)
  requests.splice(1, 1)

  // the same connection goes on as HTTP/1.1 when the client keeps it
  const { head, rest, socket } = await rawUpgrade(t, proxy.port, [
    'GET /api/server/ping HTTP/1.1',
    'Host: immich.test',
    'Connection: Upgrade, HTTP2-Settings',
    'Upgrade: h2c',
    'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA',
    '', ''
  ].join('\r\n'))
  t.match(head, /^HTTP\/1\.1 200 /)
  t.match(head, /\r\ncontent-length: 4(\r\n|$)/i)
  socket.write('GET /api/server/version HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
  const second = Buffer.concat([rest, ...await socket.toArray() as Buffer[]]).toString('latin1')
  t.match(second, /HTTP\/1\.1 200 [^]*GET $/, 'a second request on the same connection is answered')
  t.same(requests.map(r => r.req.url), ['/api/assets', '/api/server/ping', '/api/server/version'])

  const client = io(proxy.url, { path: '/api/socket.io', transports: ['websocket'], reconnection: false })
  t.teardown(() => { client.disconnect() })
  await within(new Promise(resolve => client.once('connect', () => resolve(undefined))), 5000, 'socket.io to connect')
  t.equal(client.io.engine.transport.name, 'websocket', 'the WebSocket upgrade is tunnelled')
})
