import t from 'tap'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { rawExchange, startProxy } from './helper.js'

// A field that can hold one value (RFC 9110 §8.3: Content-Type is a singleton) sent twice by
// the upstream: Node's own HTTP client keeps the first and so does the proxy, rather than
// handing Fastify a list it cannot label the answer with.
t.test('a repeated Content-Type from Immich keeps its first value', async t => {
  const server = createServer((socket: Socket) => {
    socket.on('error', () => {})
    socket.once('data', () => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const proxy = await startProxy(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  for (const method of ['GET', 'HEAD']) {
    const answer = await rawExchange(proxy.port, `${method} /api/assets/x/thumbnail HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 200 /, `${method}: 200`)
    t.match(answer, /\r\ncontent-type: image\/jpeg\r\n/i, `${method}: the first value`)
    t.notMatch(answer, /text\/html|octet-stream/, `${method}: no other label`)
  }
})
