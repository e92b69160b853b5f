import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { constants, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2'
import type { IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startProxy, startUpstream } from './helper.js'
import { receiveBody, signal, type ReceivedBody } from './helpers/bodies.js'
import { h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { within } from './helpers/wait.js'

// RFC 9113 §8.1.1: an HTTP/2 request whose DATA frames add up to more or less than its
// content-length is malformed. The client gets a stream error; Immich must never see a complete
// request made of it (an aborted one, or none at all, is what a cut upload looks like).

interface Seen extends ReceivedBody { method?: string, headers: IncomingHttpHeaders }

async function setUp (t: Test, env: Record<string, string>) {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const seen: Array<Promise<Seen>> = []
  const arrived = signal()
  const upstream = await startUpstream(t, (req, res) => {
    arrived.resolve()
    seen.push(receiveBody(req).then(received => {
      if (received.complete) res.end('complete')
      return { ...received, method: req.method, headers: req.headers }
    }))
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, ...env })
  const session = await h2Session(t, proxy.url, certificate.cert)
  return {
    certFile: files.certFile,
    url: `https://localhost:${proxy.port}`,
    session,
    /** A session of its own, for a request that may cost the client its whole connection. */
    async ownSession (): Promise<ClientHttp2Session> {
      const own = await h2Session(t, proxy.url, certificate.cert)
      own.on('error', () => {})
      return own
    },
    /** Immich has the request's headers. */
    arrived: arrived.promise,
    /** What Immich saw, once the proxy is done with the request (a proxy that forwards nothing leaves it empty). */
    async seen (): Promise<Seen[]> {
      await sleep(300)
      return await within(Promise.all(seen), 10_000, 'the upstream requests closing')
    }
  }
}

/** Writes `parts` (a Buffer each, 'end', or a promise to wait for) and returns how the stream ended. */
async function send (stream: ClientHttp2Stream, parts: Array<Buffer | 'end' | Promise<unknown>>): Promise<Ending> {
  let status: number | undefined
  let goaway: number | undefined
  stream.session?.once('goaway', (code: number) => { goaway = code })
  stream.on('response', headers => { status = Number(headers[':status']) })
  stream.on('error', () => {})
  stream.resume()
  const closed = new Promise(resolve => stream.once('close', resolve))
  for (const part of parts) {
    if (part === 'end') stream.end()
    else if (Buffer.isBuffer(part)) stream.write(part)
    else await part
  }
  await within(closed, 10_000, 'the client stream closing')
  return { status, rstCode: stream.rstCode, goaway }
}

interface Ending { status?: number, rstCode?: number, goaway?: number }

/**
 * A malformed request ends in a stream error, PROTOCOL_ERROR (RFC 9113 §8.1.1). Node 26 (nghttp2
 * 1.70) makes DATA beyond the declared length a connection error instead: GOAWAY(INTERNAL_ERROR)
 * for the client's whole session. Either way the client sees an error and no answer.
 */
function refusedAsMalformed (t: Test, ending: Ending, what: string): void {
  const streamError = ending.rstCode === constants.NGHTTP2_PROTOCOL_ERROR
  const sessionError = ending.goaway === constants.NGHTTP2_INTERNAL_ERROR && ending.rstCode !== constants.NGHTTP2_NO_ERROR
  t.ok(streamError || sessionError, `${what}: the client's stream ends in an error (${JSON.stringify(ending)})`)
  t.equal(ending.status, undefined, `${what}: no answer of Immich's reached the client`)
}

function request (session: ClientHttp2Session, headers: OutgoingHttpHeaders): ClientHttp2Stream {
  // Node ends a GET's stream with its headers unless told otherwise
  return session.request({ ':path': '/api/assets', ...headers }, { endStream: false })
}

async function curlUpload (context: Awaited<ReturnType<typeof setUp>>, args: string[]): Promise<{ exitCode: number, stderr: string }> {
  return await new Promise(resolve => {
    execFile('/usr/bin/curl', ['--silent', '--show-error', '--http2', '--cacert', context.certFile, '--max-time', '20', '--output', '/dev/null', ...args, `${context.url}/api/assets`],
      (error, _stdout, stderr) => resolve({ exitCode: error === null ? 0 : Number(error.code), stderr }))
  })
}

function nothingComplete (t: Test, seen: Seen[], what: string): void {
  t.ok(seen.every(request => !request.complete), `${what}: Immich saw no complete request (${JSON.stringify(seen.map(r => ({ method: r.method, length: r.headers['content-length'], body: r.body.length, complete: r.complete })))})`)
}

for (const BODY_LIMIT of ['50000M', '0']) {
  t.test(`BODY_LIMIT=${BODY_LIMIT}: curl declaring a length its body exceeds or falls short of`, async t => {
    const context = await setUp(t, { BODY_LIMIT })
    for (const method of ['POST', 'PUT', 'GET', 'DELETE']) {
      for (const [declared, body] of [['4', 'hello world!!'], ['13', 'hell']]) {
        const result = await curlUpload(context, ['--request', method, '--header', `content-length: ${declared}`, '--data-binary', body])
        t.not(result.exitCode, 0, `${method} ${declared} vs ${body.length}: curl reports an error (${result.stderr.trim()})`)
      }
    }
    nothingComplete(t, await context.seen(), 'each')
  })

  // the pause gives a proxy that forwards the declared bytes at once time to have Immich answer
  t.test(`BODY_LIMIT=${BODY_LIMIT}: the declared bytes first, the excess later`, async t => {
    const context = await setUp(t, { BODY_LIMIT })
    for (const method of ['POST', 'GET']) {
      const stream = request(await context.ownSession(), { ':method': method, 'content-length': 4 })
      const result = await send(stream, [Buffer.from('hell'), sleep(500), Buffer.from('o world!!'), 'end'])
      refusedAsMalformed(t, result, method)
      nothingComplete(t, await context.seen(), method)
    }
  })

  t.test(`BODY_LIMIT=${BODY_LIMIT}: part of the declared bytes, then END_STREAM after Immich has the request`, async t => {
    const context = await setUp(t, { BODY_LIMIT })
    const stream = request(context.session, { ':method': 'POST', 'content-length': 13 })
    const result = await send(stream, [Buffer.from('hell'), within(context.arrived, 10_000, 'the request at the upstream'), sleep(200), 'end'])
    t.equal(result.rstCode, constants.NGHTTP2_PROTOCOL_ERROR)
    nothingComplete(t, await context.seen(), 'short')
  })

  t.test(`BODY_LIMIT=${BODY_LIMIT}: content-length 0 followed by DATA`, async t => {
    const context = await setUp(t, { BODY_LIMIT })
    const stream = request(await context.ownSession(), { ':method': 'POST', 'content-length': 0 })
    const result = await send(stream, [sleep(200), Buffer.from('hello world!!'), 'end'])
    refusedAsMalformed(t, result, 'content-length 0')
    nothingComplete(t, await context.seen(), 'content-length 0')
  })

  t.test(`BODY_LIMIT=${BODY_LIMIT}: control: lengths that agree reach Immich whole`, async t => {
    const context = await setUp(t, { BODY_LIMIT })
    for (const method of ['POST', 'GET']) {
      const stream = request(context.session, { ':method': method, 'content-length': 13 })
      const result = await send(stream, [Buffer.from('hello'), sleep(100), Buffer.from(' world!!'), 'end'])
      t.equal(result.status, 200, method)
    }
    const empty = request(context.session, { ':method': 'POST', 'content-length': 0 })
    t.equal((await send(empty, [sleep(100), 'end'])).status, 200, 'content-length 0 and an empty DATA frame')
    const seen = await context.seen()
    t.same(seen.map(r => [r.method, r.headers['content-length'], r.body.toString(), r.complete]), [
      ['POST', '13', 'hello world!!', true], ['GET', '13', 'hello world!!', true], ['POST', '0', '', true]
    ])
  })
}
