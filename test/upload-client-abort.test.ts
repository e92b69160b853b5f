import t from 'tap'
import { connect } from 'node:net'
import { request } from 'undici'
import { startProxy, startUpstream } from './helper.js'
import { receiveBody, signal, type ReceivedBody } from './helpers/bodies.js'
import { within } from './helpers/wait.js'

const PART = 256 * 1024

const framings = {
  'Content-Length': {
    head: `Content-Length: ${64 * 1024 * 1024}`,
    part: Buffer.alloc(PART, 'a')
  },
  chunked: {
    head: 'Transfer-Encoding: chunked',
    part: Buffer.concat([Buffer.from(`${PART.toString(16)}\r\n`), Buffer.alloc(PART, 'a'), Buffer.from('\r\n')])
  }
}

for (const [name, framing] of Object.entries(framings)) {
  t.test(`a client leaving midway through a ${name} upload aborts the upstream request`, async t => {
    const partArrived = signal()
    const upstreamSaw = signal<ReceivedBody>()
    const upstream = await startUpstream(t, (req, res) => {
      if (req.method === 'GET') {
        res.end('still serving')
        return
      }
      receiveBody(req, received => { if (received >= PART) partArrived.resolve() }).then(received => {
        upstreamSaw.resolve(received)
        if (received.complete) res.end('complete')
      })
    })
    const proxy = await startProxy(t, upstream.url)

    const socket = connect(proxy.port, '127.0.0.1')
    t.teardown(() => socket.destroy())
    socket.write(`POST /api/assets HTTP/1.1\r\nHost: immich.test\r\n${framing.head}\r\n\r\n`)
    socket.write(framing.part)
    await within(partArrived.promise, 10_000, 'the first part at the upstream')
    socket.destroy()

    // a proxy that leaves the upstream request open makes this wait until the test times out
    const received = await within(upstreamSaw.promise, 10_000, 'the upstream request closing')
    t.equal(received.complete, false, 'Immich saw the request aborted, not complete')
    t.equal(received.body.length, PART, 'after the bytes the client did send')

    const next = await request(`${proxy.url}/api/server/ping`)
    t.equal(next.statusCode, 200, 'the proxy serves the next request')
    t.equal(await next.body.text(), 'still serving')
  })
}
