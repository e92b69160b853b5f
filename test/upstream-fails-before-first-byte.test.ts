import t from 'tap'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { rawExchange, startProxy } from './helper.js'

// Immich's headers arrive, then the exchange fails before the first body byte reaches the
// client: the client has been told nothing yet, so it gets the 502/504 of any other upstream
// failure, not a 500 carrying undici's own message, nor the headers of the answer that failed.
const IMMICH_HEADERS = 'Cache-Control: public, max-age=31536000, immutable\r\nETag: "abc"\r\nSet-Cookie: immich_access_token=x\r\nContent-Encoding: gzip\r\n'
const answers: Record<string, string[]> = {
  // a chunk size that is not hex: undici's parser fails after the headers
  '/bad-chunk': [`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${IMMICH_HEADERS}Transfer-Encoding: chunked\r\n\r\n`, 'zz\r\nhello\r\n0\r\n\r\n'],
  // a 304 that declares a body and sends it: undici refuses the length
  '/304-with-body': ['HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n', 'hello'],
  // headers, then silence past PROXY_TIMEOUT
  '/silent-body': [`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${IMMICH_HEADERS}Content-Length: 5\r\n\r\n`]
}

t.test('an upstream failure after the headers, before any body byte, gets 502 or 504', async t => {
  const server = createServer((socket: Socket) => {
    socket.on('error', () => {})
    socket.once('data', chunk => {
      const path = chunk.toString('latin1').split(' ')[1]
      const [head, rest] = answers[path]
      socket.write(head)
      // a read of its own, after the proxy has handed the answer to Fastify
      if (rest !== undefined) setTimeout(() => socket.end(rest), 100)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const proxy = await startProxy(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, { PROXY_TIMEOUT: '1s' })

  for (const [path, status, error] of [['/bad-chunk', 502, 'Bad Gateway'], ['/304-with-body', 502, 'Bad Gateway'], ['/silent-body', 504, 'Gateway Timeout']] as const) {
    const answer = await rawExchange(proxy.port, `GET ${path} HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n`)
    t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${path}: ${status}`)
    const body = JSON.parse(answer.split('\r\n\r\n')[1]) as Record<string, unknown>
    t.match(body, { statusCode: status, error }, `${path}: the JSON of the other upstream failures`)
    t.notMatch(String(body.message), /undici|protocol|content-length|Body Timeout/i, `${path}: no internal detail`)
    const head = answer.split('\r\n\r\n')[0]
    t.notMatch(head, /cache-control|etag|set-cookie|content-encoding/i, `${path}: none of the failed answer's headers`)
    t.match(head, /content-type: application\/json/i, `${path}: labelled as the JSON it is`)
  }
})
