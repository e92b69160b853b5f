import t from 'tap'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { settleWithin } from './helpers/timeouts.js'

t.test('an upstream reset mid-response cuts the client response, and the next request works', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/api/assets/1/original' || req.url === '/api/sync/stream') {
      // a known length (a file) or chunked (a stream): either way the end must not look complete
      res.writeHead(200, req.url === '/api/sync/stream' ? { 'content-type': 'application/x-ndjson' } : { 'content-type': 'image/jpeg', 'content-length': 1_000_000 })
      res.write(Buffer.alloc(64 * 1024, 1), () => res.socket?.destroy())
    } else {
      res.setHeader('content-type', 'application/json')
      res.end('{"res":"pong"}')
    }
  })
  // long enough that only the reset, not a timeout, can end the first response
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '60s' })
  // one keep-alive connection to the proxy, as a browser would reuse
  const client = new Client(proxy.url, { pipelining: 1 })
  t.teardown(() => client.close())

  for (const path of ['/api/assets/1/original', '/api/sync/stream']) {
    const cut = await client.request({ path, method: 'GET' })
    t.equal(cut.statusCode, 200, `${path}: the response had started`)
    let received = 0
    const read = (async () => { for await (const chunk of cut.body) received += (chunk as Buffer).length })()
    const outcome = await settleWithin(read, 10_000)
    t.equal(outcome.state, 'rejected', `${path}: the client response errors: neither hangs nor passes as complete`)
    t.ok(received <= 64 * 1024, `${path}: no more than Immich sent reached the client (${received} bytes)`)

    const next = await client.request({ path: '/api/server/ping', method: 'GET' })
    t.equal(next.statusCode, 200, 'the next request works')
    t.same(await next.body.json(), { res: 'pong' })
  }
  t.equal(upstream.requests.length, 4, 'the cut responses were not replayed')
})
