import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { constants } from 'node:http2'
import { startProxy, startUpstream } from './helper.js'
import { h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { within } from './helpers/wait.js'

// A response Immich cuts (its connection reset, or silent past PROXY_TIMEOUT) must look cut to an
// HTTP/2 client, as a missing last chunk does over HTTP/1.1: the stream is reset with an error
// code, never ended, nor reset with NO_ERROR, after the bytes there were.

const PART = 256 * 1024

// path → how Immich answers it: headers, a first part, then a reset or silence
const cuts: Record<string, { headers: Record<string, string | number>, then: 'reset' | 'stall' }> = {
  '/api/sync/stream': { headers: { 'content-type': 'application/x-ndjson' }, then: 'reset' },
  '/api/assets/1/original': { headers: { 'content-type': 'image/jpeg', 'content-length': 4 * PART }, then: 'reset' },
  '/api/assets/2/original': { headers: { 'content-type': 'image/jpeg' }, then: 'stall' },
  '/api/assets/3/original': { headers: { 'content-type': 'image/jpeg', 'content-length': 4 * PART }, then: 'stall' },
  '/.well-known/immich': { headers: { 'content-type': 'application/json' }, then: 'reset' }
}

async function setUp (t: Test) {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => {
    const cut = cuts[req.url ?? '']
    if (cut === undefined) {
      res.end('whole')
      return
    }
    res.writeHead(200, cut.headers)
    res.write(Buffer.alloc(PART, 1), () => { if (cut.then === 'reset') res.socket?.destroy() })
  })
  // short enough for the stalls to be cut within the test, long enough for nothing else to be
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, PROXY_TIMEOUT: '1s' })
  return { certificate, certFile: files.certFile, url: proxy.url, curlUrl: `https://localhost:${proxy.port}` }
}

t.test('node:http2: a response Immich cuts ends the stream with an error', async t => {
  const { certificate, url } = await setUp(t)
  const session = await h2Session(t, url, certificate.cert)
  for (const path of [...Object.keys(cuts), '/control']) {
    const stream = session.request({ ':path': path })
    let received = 0
    stream.on('data', (chunk: Buffer) => { received += chunk.length })
    const outcome = await within(new Promise<string>(resolve => {
      stream.on('error', (error: Error & { code?: string }) => resolve(`error ${error.code}`))
      stream.on('end', () => resolve('end'))
      stream.on('close', () => resolve(`close ${stream.rstCode}`))
    }), 10_000, `${path}: the client stream settling`)
    await within(new Promise(resolve => { if (stream.closed) resolve(null); else stream.once('close', resolve) }), 10_000, 'the stream closing')
    if (path === '/control') {
      t.equal(outcome, 'end', 'control: a whole response ends')
      t.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR)
      continue
    }
    t.equal(outcome, 'error ERR_HTTP2_STREAM_ERROR', `${path}: the client sees an error, not an end (${received} bytes)`)
    t.equal(stream.rstCode, constants.NGHTTP2_INTERNAL_ERROR, `${path}: RST_STREAM(INTERNAL_ERROR)`)
    t.ok(received <= PART, `${path}: no more than Immich sent`)
  }
})

t.test('curl --http2: a response Immich cuts makes curl fail', async t => {
  const { certFile, curlUrl } = await setUp(t)
  for (const path of [...Object.keys(cuts), '/control']) {
    const result = await new Promise<{ exitCode: number, stderr: string }>(resolve => {
      execFile('/usr/bin/curl', ['--silent', '--show-error', '--http2', '--cacert', certFile, '--max-time', '20', '--output', '/dev/null', `${curlUrl}${path}`],
        (error, _stdout, stderr) => resolve({ exitCode: error === null ? 0 : Number(error.code), stderr }))
    })
    if (path === '/control') t.equal(result.exitCode, 0, 'control: a whole response is a success')
    else t.not(result.exitCode, 0, `${path}: curl exits with an error (${result.stderr.trim()})`)
  }
})
