import t from 'tap'
import { once } from 'node:events'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request } from 'undici'
import { startProxy, startUpstream, text } from './helper.js'
import { pipeline } from 'node:stream/promises'
import { settleWithin, trickle } from './helpers/timeouts.js'

const GATEWAY_TIMEOUT = { statusCode: 504, error: 'Gateway Timeout', message: 'Immich did not answer in time' }

t.test('an upstream silent past PROXY_TIMEOUT before its headers gets 504 with a short JSON body', async t => {
  const upstream = await startUpstream(t, () => { /* never answers */ })
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })

  for (const method of ['GET', 'POST']) {
    const started = Date.now()
    const res = await request(`${proxy.url}/api/assets/statistics`, { method, body: method === 'POST' ? '{"a":1}' : undefined })
    const elapsed = Date.now() - started
    t.equal(res.statusCode, 504, method)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.same(await res.body.json(), GATEWAY_TIMEOUT)
    t.ok(elapsed >= 1500, `${method} waited for PROXY_TIMEOUT before giving up (${elapsed} ms)`)
  }
  t.equal(upstream.requests.length, 2, 'one upstream request each, no retry after the timeout')
  const [, second] = upstream.requests
  if (!second.socket.destroyed) await settleWithin(once(second.socket, 'close'), 10_000)
  t.ok(second.socket.destroyed, 'the proxy dropped the silent upstream connection')
})

t.test('an upstream that stops reading an upload gets 504, not a hang', async t => {
  // Immich never reads the body: the proxy's writes back up, the client is held back, and the
  // client socket falls silent because Immich is.
  const upstream = await startUpstream(t, req => req.pause())
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })
  const size = 256 * 1024 * 1024
  const chunk = Buffer.alloc(1024 * 1024, 'a')

  const req = httpRequest({
    host: '127.0.0.1',
    port: proxy.port,
    method: 'POST',
    path: '/api/assets',
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': size }
  })
  req.on('error', () => { /* the proxy closes the connection after answering */ })
  t.teardown(() => req.destroy())
  let written = 0
  const writeMore = (): void => {
    while (written < size) {
      written += chunk.length
      if (!req.write(chunk)) {
        req.once('drain', writeMore)
        return
      }
    }
    req.end()
  }
  writeMore()

  const outcome = await settleWithin(once(req, 'response') as Promise<[IncomingMessage]>, 15_000)
  t.equal(outcome.state, 'resolved', 'the client gets an answer')
  if (outcome.state !== 'resolved') return
  const [res] = outcome.value
  t.equal(res.statusCode, 504)
  t.same(JSON.parse(await text(res)), GATEWAY_TIMEOUT)
  t.ok(written < size, `the client was held back (${written} of ${size} bytes written)`)
})

t.test('an upstream silent after a slow upload gets 504 too', async t => {
  // The upload outlasts PROXY_TIMEOUT, so undici's headersTimeout has already come and gone
  // (it spares a request whose body is still being written); it must count again from the end
  // of the body.
  const upstream = await startUpstream(t, req => req.resume())
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })
  const req = httpRequest({ host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/api/assets', agent: false, headers: { 'content-length': 4 } })
  req.on('error', () => { /* reported through the missing response */ })
  t.teardown(() => req.destroy())
  const response = once(req, 'response') as Promise<[IncomingMessage]>
  await pipeline(trickle(Buffer.from('slow'), 1000), req)
  const outcome = await settleWithin(response, 10_000)
  t.equal(outcome.state, 'resolved', 'the client gets an answer')
  if (outcome.state !== 'resolved') return
  const [res] = outcome.value
  t.equal(res.statusCode, 504)
  t.same(JSON.parse(await text(res)), GATEWAY_TIMEOUT)
})
