import t from 'tap'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { Digest, digestOf } from './helpers/bodies.js'

t.test('a chunked upload (no Content-Length) arrives whole, still chunked', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    digestOf(req).then(received => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({
        bytes: received.bytes,
        sha1: received.sha1(),
        contentLength: req.headers['content-length'] ?? null,
        transferEncoding: req.headers['transfer-encoding'] ?? null
      }))
    }, error => res.destroy(error))
  })
  const proxy = await startProxy(t, upstream.url)

  // 8 MiB in uneven pieces, from one byte to a few hundred kilobytes
  const sent = new Digest()
  async function * body (): AsyncGenerator<Buffer> {
    const sizes = [1, 7, 1000, 65_536, 65_537, 300_000, 3]
    for (let i = 0; sent.bytes < 8 * 1024 * 1024; i++) {
      const piece = Buffer.alloc(sizes[i % sizes.length], i % 251)
      sent.update(piece)
      yield piece
    }
  }
  const res = await request(`${proxy.url}/api/assets`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Readable.from(body())
  })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { bytes: sent.bytes, sha1: sent.sha1(), contentLength: null, transferEncoding: 'chunked' },
    'every byte arrives, streamed on as chunks rather than collected and counted')
})
