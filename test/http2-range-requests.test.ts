import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// a video original, as Immich serves it to the web player: byte ranges honoured (RFC 9110 §14)
const video = randomBytes(512 * 1024 + 5)

t.test('HTTP/2 Range requests get 206 and exactly the bytes asked for', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    res.setHeader('accept-ranges', 'bytes')
    res.setHeader('content-type', 'video/mp4')
    if (range === null) {
      res.setHeader('content-length', video.length)
      res.end(video)
      return
    }
    const start = Number(range[1])
    const end = range[2] === '' ? video.length - 1 : Math.min(Number(range[2]), video.length - 1)
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${video.length}`, 'content-length': end - start + 1 })
    res.end(video.subarray(start, end + 1))
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const session = await h2Session(t, proxy.url, certificate.cert)
  const path = '/api/assets/4b1d/video/playback'

  const [middle, tail, whole] = await Promise.all([
    h2Request(session, { ':method': 'GET', ':path': path, range: 'bytes=1000-1999' }),
    h2Request(session, { ':method': 'GET', ':path': path, range: `bytes=${video.length - 7}-` }),
    h2Request(session, { ':method': 'GET', ':path': path })
  ])
  t.equal(middle.status, 206)
  t.equal(middle.headers['content-range'], `bytes 1000-1999/${video.length}`)
  t.equal(middle.headers['content-length'], '1000')
  t.ok(middle.body.equals(video.subarray(1000, 2000)), 'bytes 1000 to 1999, no more')
  t.equal(tail.status, 206)
  t.equal(tail.headers['content-range'], `bytes ${video.length - 7}-${video.length - 1}/${video.length}`)
  t.ok(tail.body.equals(video.subarray(-7)), 'the last 7 bytes')
  t.equal(whole.status, 200)
  t.equal(whole.headers['accept-ranges'], 'bytes')
  t.ok(whole.body.equals(video), 'without Range, the whole file')
  t.same(upstream.requests.map(req => req.headers.range).sort(), ['bytes=1000-1999', `bytes=${video.length - 7}-`, undefined].sort(), 'each Range reached Immich as sent')
  t.same(proxy.versions, ['2.0', '2.0', '2.0'])
})
