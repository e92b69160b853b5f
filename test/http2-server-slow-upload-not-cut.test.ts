import t from 'tap'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { request } from 'node:https'
import { pipeline } from 'node:stream/promises'
import { startProxy, startUpstream, text } from './helper.js'
import { trickle } from './helpers/timeouts.js'
import { makeCertificate, writeCertificateFiles } from './helpers/tls.js'

// An http2 server with allowHTTP1 gives its HTTP/1.1 clients Node's own defaults, among them a
// 300 s requestTimeout over the whole request: an upload over HTTP/1.1 (the mobile app's backup,
// curl) would be cut after five minutes however well it was moving. src/build.ts sets it to 0.
// One byte a second for 7 s, with PROXY_TIMEOUT at 2 s: never silent that long, long in total.
const BODY = Buffer.from('immich!!')

t.test('a slow HTTP/1.1 upload to the HTTP/2 listener is not cut', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const arrivals: number[] = []
  const upstream = await startUpstream(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      for (let i = 0; i < chunk.length; i++) arrivals.push(Date.now())
    })
    req.on('end', () => res.end(Buffer.concat(chunks)))
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, PROXY_TIMEOUT: '2s' })
  const node = proxy.app.server as unknown as { requestTimeout: number, constructor: { name: string } }
  t.equal(node.constructor.name, 'Http2SecureServer', 'the HTTP/2 listener, with HTTP/1.1 fallback')
  t.equal(node.requestTimeout, 0, 'no limit on a whole request')

  const req = request({
    host: '127.0.0.1',
    port: proxy.port,
    method: 'POST',
    path: '/api/assets',
    ca: certificate.cert,
    servername: 'localhost',
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': BODY.length }
  })
  const response = once(req, 'response') as Promise<[IncomingMessage]>
  await pipeline(trickle(BODY, 1000), req)
  const [res] = await response
  t.equal(res.httpVersion, '1.1')
  t.equal(res.statusCode, 200)
  t.equal(await text(res), BODY.toString(), 'Immich got every byte, in order')
  t.equal(arrivals.length, BODY.length)
  const spread = arrivals[arrivals.length - 1] - arrivals[0]
  t.ok(spread >= 6000, `the bytes reached Immich as they were sent, over ${spread} ms`)
  t.same(proxy.versions, ['1.1'])
})
