import t from 'tap'
import { Client } from 'undici'
import { startUpstream } from './helper.js'
import { Digest, digestOf, generatedBody, peakResidentBytes, resetPeakResident } from './helpers/bodies.js'
import { spawnServer, untracked } from './helpers/ops.js'

// Bodies are made, sent and hashed on the fly on both sides: neither the test nor the proxy
// ever holds 4 GiB. The proxy runs in its own process (the bundle `npm start` runs) so
// that its peak RSS is its own; the peak is taken from the transfer's start (start-up, with its
// own short peak, is not what these tests are about).
const SIZE = 4 * 1024 ** 3
const MB = 1000 * 1000
const PEAK_RSS_LIMIT = 150 * MB

t.test('a 4 GiB upload with Content-Length streams through intact in under 150 MB', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    const received = new Digest()
    req.on('data', (chunk: Buffer) => received.update(chunk))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({
        bytes: received.bytes,
        sha1: received.sha1(),
        contentLength: req.headers['content-length'] ?? null,
        transferEncoding: req.headers['transfer-encoding'] ?? null
      }))
    })
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url }, { wrap: untracked })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  const sent = new Digest()
  await resetPeakResident(proxy.child.pid as number)
  const started = process.hrtime.bigint()
  const res = await client.request({
    method: 'POST',
    path: '/api/assets',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
    body: generatedBody(SIZE, sent)
  })
  const answer = await res.body.json() as Record<string, unknown>
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peak = await peakResidentBytes(proxy.child.pid as number)

  t.equal(res.statusCode, 200)
  t.equal(sent.bytes, SIZE)
  t.same(answer, { bytes: SIZE, sha1: sent.sha1(), contentLength: String(SIZE), transferEncoding: null },
    'Immich got every byte, in order, with the Content-Length the client declared')
  t.ok(peak < PEAK_RSS_LIMIT, `proxy peak RSS ${(peak / MB).toFixed(1)} MB stays under 150 MB`)
  t.comment(`upload 4 GiB: ${(SIZE / MB / seconds).toFixed(0)} MB/s, proxy peak RSS ${(peak / MB).toFixed(1)} MB`)
})

t.test('a 4 GiB download streams through intact in under 150 MB', async t => {
  const served = new Digest()
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(SIZE) })
    generatedBody(SIZE, served).pipe(res)
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url }, { wrap: untracked })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  await resetPeakResident(proxy.child.pid as number)
  const started = process.hrtime.bigint()
  const res = await client.request({ method: 'GET', path: '/api/assets/4b1d/original' })
  const received = await digestOf(res.body)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peak = await peakResidentBytes(proxy.child.pid as number)

  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(SIZE), 'Content-Length reaches the client')
  t.equal(served.bytes, SIZE)
  t.equal(received.bytes, SIZE, 'every byte arrives')
  t.equal(received.sha1(), served.sha1(), 'in order, unchanged')
  t.ok(peak < PEAK_RSS_LIMIT, `proxy peak RSS ${(peak / MB).toFixed(1)} MB stays under 150 MB`)
  t.comment(`download 4 GiB: ${(SIZE / MB / seconds).toFixed(0)} MB/s, proxy peak RSS ${(peak / MB).toFixed(1)} MB`)
})
