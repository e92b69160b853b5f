import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'

t.test('a 503 from Immich reaches the client once, Retry-After untouched, and is not retried', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
    res.end('{"message":"Immich is starting","statusCode":503}')
  })
  const proxy = await startProxy(t, upstream.url)

  for (const method of ['GET', 'HEAD', 'OPTIONS']) {
    const before = upstream.requests.length
    const res = await request(`${proxy.url}/api/server/ping`, { method })
    t.equal(res.statusCode, 503, method)
    t.equal(res.headers['retry-after'], '1', `${method}: Retry-After as Immich sent it`)
    t.equal(await res.body.text(), method === 'HEAD' ? '' : '{"message":"Immich is starting","statusCode":503}')
    // reply-from would replay a GET up to 10 times, reading Retry-After: 1 as 1 ms
    await sleep(200)
    t.equal(upstream.requests.length - before, 1, `${method}: Immich saw exactly one request`)
  }
})
