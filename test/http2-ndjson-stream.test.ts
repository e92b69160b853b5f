import t from 'tap'
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http2'
import { startProxy, startUpstream } from './helper.js'
import { signal } from './helpers/bodies.js'
import { h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { within } from './helpers/wait.js'

// Immich's POST /api/sync/stream over HTTP/2: each JSON line must reach the client while the
// upstream still holds the next one back. Buffering anywhere (for a frame size, a time, or the
// end) would leave the client waiting, and the bounded waits below would fail.
const LINES = 5

t.test('every NDJSON line reaches an HTTP/2 client before the upstream writes the next', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const received = Array.from({ length: LINES }, () => signal())
  const events: string[] = []
  async function writeLines (res: ServerResponse): Promise<void> {
    for (let i = 0; i < LINES; i++) {
      events.push(`upstream wrote ${i}`)
      res.write(JSON.stringify({ type: 'AssetV1', ack: `ack-${i}` }) + '\n')
      await within(received[i].promise, 10_000, `line ${i} at the client`).catch(() => {})
    }
    res.end()
  }
  const upstream = await startUpstream(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/jsonlines+json' })
    writeLines(res).catch(() => res.destroy())
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const session = await h2Session(t, proxy.url, certificate.cert)

  const stream = session.request({ ':method': 'POST', ':path': '/api/sync/stream', 'content-type': 'application/json' })
  stream.end(JSON.stringify({ types: ['AssetsV1'] }))
  const [headers] = await within(once(stream, 'response') as Promise<[IncomingHttpHeaders]>, 10_000, 'the response')
  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'application/jsonlines+json')

  const lines: unknown[] = []
  let pending = ''
  await within((async () => {
    for await (const chunk of stream) {
      pending += (chunk as Buffer).toString()
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
  t.same(lines, Array.from({ length: LINES }, (_, i) => ({ type: 'AssetV1', ack: `ack-${i}` })))
  t.same(events, Array.from({ length: LINES }, (_, i) => [`upstream wrote ${i}`, `client got ${i}`]).flat(),
    'each line arrived while the next was still held back')
  t.same(proxy.versions, ['2.0'])
})
