import t from 'tap'
import type { ServerResponse } from 'node:http'
import { startProxy, startUpstream, text } from './helper.js'
import { trickle } from './helpers/timeouts.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// The core's timeout promises, for HTTP/2 streams: a transfer that keeps moving is never cut,
// however long it takes, and Immich's silence past PROXY_TIMEOUT is a 504, not a dropped stream.
// PROXY_TIMEOUT is 2 s; the transfers move a byte a second for 6 s, on one shared session.
const BODY = Buffer.from('immich!')

function trickleOut (res: ServerResponse): void {
  let sent = 0
  const timer = setInterval(() => {
    res.write(BODY.subarray(sent, sent + 1))
    if (++sent === BODY.length) {
      clearInterval(timer)
      res.end()
    }
  }, 1000)
  res.on('close', () => clearInterval(timer))
}

t.test('slow HTTP/2 uploads and downloads are not cut; a silent Immich is a 504', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/api/jobs/silent') req.resume()
    else if (req.url === '/api/assets/1/original') trickleOut(res)
    else text(req).then(body => res.end(body), () => res.destroy())
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, PROXY_TIMEOUT: '2s' })
  const session = await h2Session(t, proxy.url, certificate.cert)

  const timed = async <T>(work: Promise<T>): Promise<[T, number]> => {
    const started = Date.now()
    return [await work, Date.now() - started]
  }
  const [[upload, uploadMs], [download, downloadMs], [silent, silentMs]] = await Promise.all([
    timed(h2Request(session, { ':method': 'POST', ':path': '/api/assets', 'content-type': 'application/octet-stream' }, trickle(BODY, 1000))),
    timed(h2Request(session, { ':method': 'GET', ':path': '/api/assets/1/original' })),
    timed(h2Request(session, { ':method': 'GET', ':path': '/api/jobs/silent' }))
  ])
  t.equal(upload.status, 200)
  t.equal(upload.body.toString(), BODY.toString(), `the upload reached Immich whole, over ${uploadMs} ms`)
  t.ok(uploadMs >= 5000, 'it did take longer than PROXY_TIMEOUT')
  t.equal(download.status, 200)
  t.equal(download.body.toString(), BODY.toString(), `the download arrived whole, over ${downloadMs} ms`)
  t.ok(downloadMs >= 5000)
  t.equal(silent.status, 504, `Immich silent: 504 after ${silentMs} ms`)
  t.same(JSON.parse(silent.body.toString()), { statusCode: 504, error: 'Gateway Timeout', message: 'Immich did not answer in time' })
  t.equal(session.closed || session.destroyed, false, 'the session is still up')
})
