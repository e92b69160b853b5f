// A whole upload and a whole download through the proxy's own process, hashed on both sides, with
// the proxy's peak RSS over the transfer. Bodies are made, sent and hashed on the fly: neither the
// test nor the proxy ever holds them. The proxy runs as `npm start` runs it (the bundle), so that
// its peak RSS is its own; the peak is taken from the transfer's start (start-up, with its own
// short peak, is not what these cases are about). The suite sends 256 MiB (268 MB) under a bound
// of 200 MB: a proxy that buffered a body would fail it, and a CPU saturated by the rest of the
// suite (garbage collected later, peaks up to 152 MB seen) does not. `npm run soak`, alone on the
// machine, sends 4 GiB under 150 MB: what stays bounded over a long transfer.
import type { Test } from 'tap'
import { Client } from 'undici'
import { startUpstream } from '../helper.js'
import { Digest, digestOf, generatedBody, peakResidentBytes, resetPeakResident } from './bodies.js'
import { spawnServer } from './ops.js'

const MB = 1000 * 1000
/** The soak's bound, over 4 GiB on a quiet machine. */
export const PEAK_RSS_LIMIT = 150 * MB
/** The suite's bound, over 256 MiB while other tests load the CPU: below the body's size. */
export const SUITE_PEAK_RSS_LIMIT = 200 * MB

export async function uploadStreamsWithin (t: Test, size: number, limit: number): Promise<void> {
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
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  const sent = new Digest()
  await resetPeakResident(proxy.child.pid as number)
  const started = process.hrtime.bigint()
  const res = await client.request({
    method: 'POST',
    path: '/api/assets',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: generatedBody(size, sent)
  })
  const answer = await res.body.json() as Record<string, unknown>
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peak = await peakResidentBytes(proxy.child.pid as number)

  t.equal(res.statusCode, 200)
  t.equal(sent.bytes, size)
  t.same(answer, { bytes: size, sha1: sent.sha1(), contentLength: String(size), transferEncoding: null },
    'Immich got every byte, in order, with the Content-Length the client declared')
  t.ok(peak < limit, `proxy peak RSS ${(peak / MB).toFixed(1)} MB stays under ${limit / MB} MB`)
  t.comment(`upload ${label(size)}: ${(size / MB / seconds).toFixed(0)} MB/s, proxy peak RSS ${(peak / MB).toFixed(1)} MB`)
}

export async function downloadStreamsWithin (t: Test, size: number, limit: number): Promise<void> {
  const served = new Digest()
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(size) })
    generatedBody(size, served).pipe(res)
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  const client = new Client(proxy.url)
  t.teardown(() => client.close())

  await resetPeakResident(proxy.child.pid as number)
  const started = process.hrtime.bigint()
  const res = await client.request({ method: 'GET', path: '/api/assets/4b1d/original' })
  const received = await digestOf(res.body)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const peak = await peakResidentBytes(proxy.child.pid as number)

  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(size), 'Content-Length reaches the client')
  t.equal(served.bytes, size)
  t.equal(received.bytes, size, 'every byte arrives')
  t.equal(received.sha1(), served.sha1(), 'in order, unchanged')
  t.ok(peak < limit, `proxy peak RSS ${(peak / MB).toFixed(1)} MB stays under ${limit / MB} MB`)
  t.comment(`download ${label(size)}: ${(size / MB / seconds).toFixed(0)} MB/s, proxy peak RSS ${(peak / MB).toFixed(1)} MB`)
}

function label (size: number): string {
  return size >= 1024 ** 3 ? `${size / 1024 ** 3} GiB` : `${size / 1024 ** 2} MiB`
}
