import t from 'tap'
import { request, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { pipeline } from 'node:stream/promises'
import { startUpstream, text } from './helper.js'
import { LOWERED_NODE_TIMERS, startProxyWithServerOptions, trickle } from './helpers/timeouts.js'

// One byte a second for 8 s: longer than PROXY_TIMEOUT (2 s) and than Node's headersTimeout and
// keepAliveTimeout (lowered to 3 s), with no gap as long as PROXY_TIMEOUT.
const BODY = Buffer.from('immich-up')
const EVERY_MS = 1000

t.test('an upload that keeps moving is never cut, however long it takes', async t => {
  const arrivals: Record<string, number[]> = {}
  const upstream = await startUpstream(t, (req, res) => {
    const times: number[] = arrivals[req.url ?? ''] = []
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      for (let i = 0; i < chunk.length; i++) times.push(Date.now())
    })
    req.on('end', () => res.end(Buffer.concat(chunks)))
  })
  const proxy = await startProxyWithServerOptions(t, upstream.url, { PROXY_TIMEOUT: '2s' }, LOWERED_NODE_TIMERS)
  t.equal(proxy.app.server.headersTimeout, 3000, 'Node headersTimeout lowered for the test')
  t.equal(proxy.app.server.keepAliveTimeout, 3000, 'Node keepAliveTimeout lowered for the test')
  // The control: a total limit (Node's requestTimeout, here 3 s) does cut this upload, so the
  // test can tell an inactivity limit from a total one.
  const control = await startProxyWithServerOptions(t, upstream.url, { PROXY_TIMEOUT: '2s' }, { ...LOWERED_NODE_TIMERS, requestTimeout: 3000 })

  // with Content-Length (the web app) and chunked (a streaming client), side by side
  async function upload (port: number, path: string, headers: Record<string, string | number>): Promise<{ status?: number, body: string }> {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, headers, agent: false })
    const response = once(req, 'response') as Promise<[IncomingMessage]>
    await pipeline(trickle(BODY, EVERY_MS), req)
    const [res] = await response
    return { status: res.statusCode, body: await text(res) }
  }
  const [sized, chunked, cut] = await Promise.all([
    upload(proxy.port, '/api/assets?sized', { 'content-type': 'application/octet-stream', 'content-length': BODY.length }),
    upload(proxy.port, '/api/assets?chunked', { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' }),
    upload(control.port, '/api/assets?control', { 'content-type': 'application/octet-stream', 'content-length': BODY.length })
      .catch((error: Error) => ({ status: undefined, body: error.message }))
  ])
  t.not(cut.status, 200, `the control with a 3 s requestTimeout is cut (${cut.status ?? cut.body})`)

  for (const [name, result] of [['sized', sized], ['chunked', chunked]] as const) {
    t.equal(result.status, 200, `${name} upload answered by Immich`)
    t.equal(result.body, BODY.toString(), `${name}: Immich got every byte, in order`)
    const times = arrivals[`/api/assets?${name}`]
    t.equal(times.length, BODY.length)
    const spread = times[times.length - 1] - times[0]
    t.ok(spread >= 6000, `${name}: bytes reached Immich as they were sent, over ${spread} ms`)
  }
})
