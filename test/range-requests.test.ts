import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Client } from 'undici'
import { startProxy, startUpstream } from './helper.js'

// the original of a video, served as Immich serves it: byte ranges honoured (RFC 9110 §14)
const video = randomBytes(1024 * 1024 + 17)

function serveWithRanges (req: IncomingMessage, res: ServerResponse): void {
  const size = video.length
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '')
  res.setHeader('accept-ranges', 'bytes')
  res.setHeader('content-type', 'video/mp4')
  res.setHeader('etag', '"v1"')
  if (range === null) {
    res.setHeader('content-length', size)
    res.end(video)
    return
  }
  const [, from, to] = range
  const start = from === '' ? Math.max(0, size - Number(to)) : Number(from)
  const end = from === '' || to === '' ? size - 1 : Math.min(Number(to), size - 1)
  if (start > end || start >= size) {
    res.writeHead(416, { 'content-range': `bytes */${size}` }).end()
    return
  }
  res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 })
  res.end(video.subarray(start, end + 1))
}

t.test('Range requests get 206 with Content-Range and exactly the bytes asked for', async t => {
  const upstream = await startUpstream(t, serveWithRanges)
  const proxy = await startProxy(t, upstream.url)
  const client = new Client(proxy.url)
  t.teardown(() => client.close())
  const path = '/api/assets/4b1d/video/playback'

  const middle = await client.request({ method: 'GET', path, headers: { range: 'bytes=100-199' } })
  t.equal(middle.statusCode, 206)
  t.equal(middle.headers['content-range'], `bytes 100-199/${video.length}`)
  t.equal(middle.headers['accept-ranges'], 'bytes')
  t.equal(middle.headers['content-length'], '100')
  t.ok(Buffer.from(await middle.body.arrayBuffer()).equals(video.subarray(100, 200)), 'bytes 100 to 199, no more')
  t.equal(upstream.requests.at(-1)?.headers.range, 'bytes=100-199', 'the Range header reached Immich as sent')

  const suffix = await client.request({ method: 'GET', path, headers: { range: 'bytes=-500' } })
  t.equal(suffix.statusCode, 206)
  t.equal(suffix.headers['content-range'], `bytes ${video.length - 500}-${video.length - 1}/${video.length}`)
  t.ok(Buffer.from(await suffix.body.arrayBuffer()).equals(video.subarray(-500)), 'the last 500 bytes')

  const open = await client.request({ method: 'GET', path, headers: { range: `bytes=${video.length - 10}-` } })
  t.equal(open.statusCode, 206)
  t.equal(open.headers['content-range'], `bytes ${video.length - 10}-${video.length - 1}/${video.length}`)
  t.ok(Buffer.from(await open.body.arrayBuffer()).equals(video.subarray(-10)), 'from an offset to the end')

  const beyond = await client.request({ method: 'GET', path, headers: { range: `bytes=${video.length}-` } })
  t.equal(beyond.statusCode, 416, 'an unsatisfiable range is Immich\'s 416, passed on')
  t.equal(beyond.headers['content-range'], `bytes */${video.length}`)
  await beyond.body.dump()

  const whole = await client.request({ method: 'GET', path })
  t.equal(whole.statusCode, 200)
  t.equal(whole.headers['accept-ranges'], 'bytes')
  t.ok(Buffer.from(await whole.body.arrayBuffer()).equals(video), 'without Range, the whole file')
})
