import t from 'tap'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { digestOf, receiveBody, signal } from './helpers/bodies.js'
import { within } from './helpers/wait.js'

// 60000 MiB: over the default BODY_LIMIT of 50000M, announced but never sent in full
const HUGE = 60_000 * 1024 * 1024

async function announceHugeBody (port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let response = ''
  socket.on('data', data => { response += data.toString('latin1') })
  socket.write(`PUT /api/assets/huge HTTP/1.1\r\nHost: immich.test\r\nContent-Length: ${HUGE}\r\n\r\n`)
  socket.write(Buffer.alloc(1024, 'a'))
  return await new Promise(resolve => {
    socket.on('close', () => resolve(response))
    socket.on('data', () => socket.destroy())
  })
}

t.test('BODY_LIMIT=0 lets any declared length through; the default would refuse it', async t => {
  const reached = signal<number>()
  const upstream = await startUpstream(t, (req, res) => {
    // the start of the body is here: the request was forwarded, not refused; answer now
    receiveBody(req, received => { if (received === 1024) { reached.resolve(received); res.end('streaming') } })
  })

  const limited = await startProxy(t, upstream.url)
  t.match(await within(announceHugeBody(limited.port), 10_000, 'the default limit\'s answer'), /^HTTP\/1\.1 413 /,
    'the default 50000M refuses 60000 MiB')
  t.equal(upstream.requests.length, 0)

  const unlimited = await startProxy(t, upstream.url, { BODY_LIMIT: '0' })
  t.match(await within(announceHugeBody(unlimited.port), 10_000, 'Immich\'s answer'), /^HTTP\/1\.1 200 /)
  t.equal(await reached.promise, 1024)
  t.equal(upstream.requests.length, 1)
  t.equal(upstream.requests[0].headers['content-length'], String(HUGE), 'the declared length reached Immich')
})

t.test('BODY_LIMIT=0 is no limit rather than a limit of zero: a chunked body passes', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    digestOf(req).then(received => res.end(String(received.bytes)), error => res.destroy(error))
  })
  const proxy = await startProxy(t, upstream.url, { BODY_LIMIT: '0' })
  async function * body (): AsyncGenerator<Buffer> {
    for (let i = 0; i < 32; i++) yield Buffer.alloc(64 * 1024, i)
  }
  const res = await request(`${proxy.url}/api/assets`, { method: 'POST', body: Readable.from(body()) })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), String(32 * 64 * 1024))
})
