import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { startProxy, startUpstream } from './helper.js'
import { settleWithin } from './helpers/timeouts.js'

// A client that starts a request and falls silent, e.g. a phone that lost its network mid-upload.
async function sendAndFallSilent (port: number, bytes: string): Promise<{ closedAfter: number | 'still open', received: string }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => { /* a reset is a disconnection too */ })
  await once(socket, 'connect')
  let received = ''
  socket.on('data', chunk => { received += String(chunk) })
  socket.write(bytes)
  const started = Date.now()
  const closed = await settleWithin(once(socket, 'close'), 10_000)
  socket.destroy()
  return { closedAfter: closed.state === 'resolved' ? Date.now() - started : 'still open', received }
}

t.test('a client silent in the middle of its headers is disconnected after PROXY_TIMEOUT', async t => {
  const upstream = await startUpstream(t, (req, res) => { req.resume() })
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })

  const halfHead = await sendAndFallSilent(proxy.port, 'POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nContent-Ty')
  t.type(halfHead.closedAfter, 'number', `disconnected (${halfHead.closedAfter} ms)`)
  t.ok(Number(halfHead.closedAfter) >= 1500, 'not before PROXY_TIMEOUT')
  t.equal(upstream.requests.length, 0, 'nothing reached Immich')
})

const halfBodies = {
  'with Content-Length': 'POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(10),
  chunked: 'PUT /api/assets/1/original HTTP/1.1\r\nHost: immich.test\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n'
}

for (const [name, bytes] of Object.entries(halfBodies)) {
  t.test(`a client silent in the middle of a body ${name} is disconnected, and so is the upstream request`, async t => {
    const upstream = await startUpstream(t, (req, res) => { req.resume() })
    const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '2s' })

    const halfBody = await sendAndFallSilent(proxy.port, bytes)
    t.type(halfBody.closedAfter, 'number', `disconnected (${halfBody.closedAfter} ms)`)
    t.ok(Number(halfBody.closedAfter) >= 1500, 'not before PROXY_TIMEOUT')
    t.equal(upstream.requests.length, 1, 'the request had gone on to Immich')
    const atImmich = upstream.requests[0]
    if (!atImmich.socket.destroyed) await settleWithin(once(atImmich.socket, 'close'), 5000)
    t.ok(atImmich.socket.destroyed, 'the upstream request was aborted with the client')
    t.notOk(atImmich.complete, 'Immich never saw a complete body')
  })
}
