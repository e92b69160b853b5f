import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { receiveBody } from './helpers/bodies.js'

// Whatever the Content-Type, the body is Immich's to read: the proxy neither parses nor
// re-encodes it, and no parser's own size cap (Fastify's 1 MiB) applies in place of BODY_LIMIT.
const contentTypes = [
  'text/plain; charset=iso-8859-1',
  'text/plain',
  'application/json',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'image/heic',
  undefined
]

const bodies = {
  // "café" in Latin-1: not UTF-8, so decoding it as text would change it
  'a short Latin-1 text': Buffer.from([0x63, 0x61, 0x66, 0xe9]),
  '2 MiB of arbitrary bytes': randomBytes(2 * 1024 * 1024)
}

t.test('a request body reaches Immich unchanged whatever its Content-Type', async t => {
  const seen: Array<{ contentType: string | undefined, body: Buffer }> = []
  const upstream = await startUpstream(t, (req, res) => {
    receiveBody(req).then(({ body }) => {
      seen.push({ contentType: req.headers['content-type'], body })
      res.end('stored')
    })
  })
  const proxy = await startProxy(t, upstream.url)
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  for (const contentType of contentTypes) {
    for (const [what, body] of Object.entries(bodies)) {
      const label = `${what} as ${contentType ?? 'no Content-Type'}`
      const res = await client.request({
        method: 'PUT',
        path: '/api/assets/4b1d/original',
        headers: contentType === undefined ? {} : { 'content-type': contentType },
        body
      })
      t.equal(res.statusCode, 200, label)
      t.equal(await res.body.text(), 'stored', label)
      const last = seen.at(-1)
      t.equal(last?.contentType, contentType, `${label}: Content-Type unchanged`)
      t.ok(last?.body.equals(body), `${label}: ${body.length} bytes unchanged`)
      seen.length = 0
    }
  }
})
