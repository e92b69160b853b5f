import t from 'tap'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { receiveBody, signal, type ReceivedBody } from './helpers/bodies.js'
import { within } from './helpers/wait.js'

// BODY_LIMIT=1k: a body without Content-Length is counted as it streams; 1024 bytes pass
const env = { BODY_LIMIT: '1k' }

function chunk (data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
}

t.test('a chunked body crossing the limit aborts the upstream request and gets 413', async t => {
  const firstPart = signal()
  const upstreamSaw = signal<ReceivedBody>()
  const upstream = await startUpstream(t, (req, res) => {
    receiveBody(req, received => { if (received === 1000) firstPart.resolve() }).then(received => {
      upstreamSaw.resolve(received)
      if (received.complete) res.end('complete')
    })
  })
  const proxy = await startProxy(t, upstream.url, env)
  const socket = connect(proxy.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let response = ''
  socket.on('data', data => { response += data.toString('latin1') })
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))

  socket.write('POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nTransfer-Encoding: chunked\r\n\r\n')
  socket.write(chunk(Buffer.alloc(1000, 'a')))
  // the first 1000 bytes are already at Immich: the body streams, it is not held back to count
  await within(firstPart.promise, 10_000, 'the first part at the upstream')
  socket.write(chunk(Buffer.alloc(100, 'b')))

  const received = await within(upstreamSaw.promise, 10_000, 'the upstream request ending')
  t.equal(received.complete, false, 'Immich saw the request aborted, never complete')
  t.equal(received.body.length, 1000, 'and not one byte past the limit')
  // the client never sends the last chunk: the proxy answers and hangs up on its own
  await within(closed, 10_000, 'connection close after the 413')
  t.match(response, /^HTTP\/1\.1 413 /)
  t.match(response, /\r\nconnection: close\r\n/i)
  t.match(response, /\r\ncontent-type: application\/json/i)
  const json = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as unknown
  t.match(json, { statusCode: 413, error: 'Payload Too Large', message: 'Request body is larger than 1024 bytes' })
})

t.test('a chunked body crossing the limit after Immich has started answering cuts the response', async t => {
  const upstreamSaw = signal<ReceivedBody>()
  const upstream = await startUpstream(t, (req, res) => {
    // an answer that starts before the body has been read to its end
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('started')
    receiveBody(req).then(received => {
      upstreamSaw.resolve(received)
      res.end()
    })
  })
  const proxy = await startProxy(t, upstream.url, env)
  const socket = connect(proxy.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let response = ''
  const headersIn = signal()
  socket.on('data', data => {
    response += data.toString('latin1')
    if (response.includes('started')) headersIn.resolve()
  })
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))

  socket.write('POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nTransfer-Encoding: chunked\r\n\r\n')
  socket.write(chunk(Buffer.alloc(1000, 'a')))
  await within(headersIn.promise, 10_000, 'the response start at the client')
  socket.write(chunk(Buffer.alloc(100, 'b')))

  const received = await within(upstreamSaw.promise, 10_000, 'the upstream request ending')
  t.equal(received.complete, false, 'Immich saw the request aborted')
  await within(closed, 10_000, 'the cut response')
  t.match(response, /^HTTP\/1\.1 200 /, 'the answer had started: too late for a 413')
  t.notMatch(response, /\r\n0\r\n\r\n$/, 'the chunked response never ends properly: the client sees it cut')
})

t.test('a chunked body exactly at the limit passes', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    receiveBody(req).then(({ body, complete }) => res.end(JSON.stringify({ bytes: body.length, complete })))
  })
  const proxy = await startProxy(t, upstream.url, env)
  async function * body (): AsyncGenerator<Buffer> {
    for (let i = 0; i < 4; i++) yield Buffer.alloc(256, i)
  }
  const res = await request(`${proxy.url}/api/assets`, { method: 'POST', body: Readable.from(body()) })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { bytes: 1024, complete: true })
})
