import t from 'tap'
import { request } from 'undici'
import { pipeline } from 'node:stream/promises'
import { startUpstream } from './helper.js'
import { LOWERED_NODE_TIMERS, startProxyWithServerOptions, trickle } from './helpers/timeouts.js'

// Immich drips one byte a second for 8 s: longer than PROXY_TIMEOUT (2 s) and than Node's
// headersTimeout and keepAliveTimeout (lowered to 3 s), with no gap as long as PROXY_TIMEOUT.
const BODY = Buffer.from('immich-dn')
const EVERY_MS = 1000

t.test('a download that keeps moving is never cut, however long it takes', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    const sized = req.url?.endsWith('sized') === true
    res.writeHead(200, sized ? { 'content-type': 'video/mp4', 'content-length': BODY.length } : { 'content-type': 'application/x-ndjson' })
    pipeline(trickle(BODY, EVERY_MS), res).catch(() => { /* the test fails on the client side */ })
  })
  const proxy = await startProxyWithServerOptions(t, upstream.url, { PROXY_TIMEOUT: '2s' }, LOWERED_NODE_TIMERS)

  async function download (path: string): Promise<{ status: number, body: string, spread: number }> {
    const res = await request(`${proxy.url}${path}`)
    const times: number[] = []
    let body = ''
    for await (const chunk of res.body) {
      body += String(chunk)
      times.push(Date.now())
    }
    return { status: res.statusCode, body, spread: times[times.length - 1] - times[0] }
  }
  // with Content-Length (a video) and chunked (Immich's sync stream), side by side
  const [sized, chunked] = await Promise.all([download('/api/assets/1/video/playback?sized'), download('/api/sync/stream?chunked')])

  for (const [name, result] of [['sized', sized], ['chunked', chunked]] as const) {
    t.equal(result.status, 200, name)
    t.equal(result.body, BODY.toString(), `${name}: the client got every byte`)
    t.ok(result.spread >= 6000, `${name}: bytes reached the client as Immich sent them, over ${result.spread} ms`)
  }
})
