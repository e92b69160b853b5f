import t, { type Test } from 'tap'
import { constants } from 'node:http2'
import type { IncomingHttpHeaders } from 'node:http'
import { startProxy, startUpstream } from './helper.js'
import { receiveBody, signal, type ReceivedBody } from './helpers/bodies.js'
import { h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { within } from './helpers/wait.js'

// An HTTP/2 client gives up on an upload with RST_STREAM alone: no END_STREAM, so the body is
// cut and Immich must see it cut, however the body is framed and whatever BODY_LIMIT is. A client
// that sent END_STREAM first has finished its body: a reset after it only cancels the answer.
// (Node's client sends RST_STREAM alone on destroy(): NO_ERROR, or CANCEL when its signal aborts.)

const PART = 64 * 1024

interface Seen extends ReceivedBody { headers: IncomingHttpHeaders }

async function setUp (t: Test, env: Record<string, string>) {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const partArrived = signal()
  const seen = signal<Seen>()
  const upstream = await startUpstream(t, (req, res) => {
    receiveBody(req, received => { if (received >= PART) partArrived.resolve() }).then(received => {
      seen.resolve({ ...received, headers: req.headers })
      if (received.complete) res.end('complete')
    })
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, ...env })
  const session = await h2Session(t, proxy.url, certificate.cert)
  return { session, partArrived: partArrived.promise, seen: async () => await within(seen.promise, 10_000, 'the upstream request closing') }
}

const framings: Record<string, Record<string, number>> = { 'content-length': { 'content-length': 4 * PART }, 'no length': {} }

for (const BODY_LIMIT of ['50000M', '0']) {
  for (const [framing, length] of Object.entries(framings)) {
    for (const code of ['CANCEL', 'NO_ERROR'] as const) {
      t.test(`BODY_LIMIT=${BODY_LIMIT}, ${framing}: RST_STREAM(${code}) alone mid-body reaches Immich as an aborted body`, async t => {
        const { session, partArrived, seen } = await setUp(t, { BODY_LIMIT })
        const abort = new AbortController()
        const stream = session.request({ ':method': 'POST', ':path': '/api/assets', ...length }, { signal: abort.signal })
        stream.on('error', () => {})
        stream.write(Buffer.alloc(PART, 'a'))
        await within(partArrived, 10_000, 'the first part at the upstream')
        if (code === 'CANCEL') abort.abort()
        else stream.destroy()
        const received = await seen()
        t.equal(stream.rstCode, constants[`NGHTTP2_${code}`], `the client sent RST_STREAM(${code})`)
        t.equal(received.complete, false, 'Immich saw the body aborted, not complete')
        t.equal(received.body.length, PART, 'after the bytes the client did send')
      })
    }

    t.test(`BODY_LIMIT=${BODY_LIMIT}, ${framing}: END_STREAM then RST_STREAM(CANCEL): Immich gets the body whole`, async t => {
      const { session, seen } = await setUp(t, { BODY_LIMIT })
      const body = Buffer.alloc(4 * PART, 'b')
      const stream = session.request({ ':method': 'POST', ':path': '/api/assets', ...length })
      stream.on('error', () => {})
      stream.end(body)
      stream.once('finish', () => stream.close(constants.NGHTTP2_CANCEL))
      const received = await seen()
      t.equal(received.complete, true, 'the body was finished')
      t.ok(received.body.equals(body), `every byte (${received.body.length} of ${body.length})`)
    })
  }
}
