import t from 'tap'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { signal } from './helpers/bodies.js'
import { within } from './helpers/wait.js'

// Immich's POST /api/sync/stream: JSON lines written as changes are found. Each line must reach
// the client while the upstream still holds the next one back; a proxy that buffered (for a
// size, a time or the end) would leave the client waiting and this test would time out.
const LINES = 5

t.test('every NDJSON line reaches the client before the upstream writes the next', async t => {
  const received = Array.from({ length: LINES }, () => signal())
  const events: string[] = []
  async function writeLines (res: ServerResponse): Promise<void> {
    for (let i = 0; i < LINES; i++) {
      events.push(`upstream wrote ${i}`)
      res.write(JSON.stringify({ type: 'AssetV1', ack: `ack-${i}`, data: { id: `asset-${i}` } }) + '\n')
      // held back until the client has line i; after 10 s it goes on regardless, and the
      // order of events below shows the line that did not arrive in time
      await within(received[i].promise, 10_000, `line ${i} at the client`).catch(() => {})
    }
    res.end()
  }
  const upstream = await startUpstream(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/jsonlines+json' })
    writeLines(res).catch(error => res.destroy(error))
  })
  const proxy = await startProxy(t, upstream.url)

  const res = await request(`${proxy.url}/api/sync/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ types: ['AssetsV1'] })
  })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/jsonlines+json')
  t.equal(res.headers['content-length'], undefined, 'no length: the body streams')

  const lines: unknown[] = []
  let pending = ''
  await within((async () => {
    for await (const chunk of res.body) {
      pending += chunk.toString()
      let newline: number
      while ((newline = pending.indexOf('\n')) !== -1) {
        lines.push(JSON.parse(pending.slice(0, newline)))
        pending = pending.slice(newline + 1)
        events.push(`client got ${lines.length - 1}`)
        received[lines.length - 1].resolve()
      }
    }
  })(), 30_000, 'the whole stream')

  t.equal(pending, '')
  t.same(lines, Array.from({ length: LINES }, (_, i) => ({ type: 'AssetV1', ack: `ack-${i}`, data: { id: `asset-${i}` } })))
  t.same(events, Array.from({ length: LINES }, (_, i) => [`upstream wrote ${i}`, `client got ${i}`]).flat(),
    'each line arrived while the next was still held back')
})
