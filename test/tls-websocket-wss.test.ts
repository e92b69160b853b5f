import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io } from 'socket.io-client'
import WebSocket from 'ws'
import { startProxy } from './helper.js'
import { startWsUpstream } from './helpers/websocket.js'
import { makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { within } from './helpers/wait.js'

// Browsers open Immich's socket with an HTTP/1.1 upgrade even on a connection pool that speaks
// HTTP/2 (no RFC 8441 here), so wss:// must keep working on the port that also serves h2.
for (const http2 of ['true', 'false']) {
  t.test(`HTTP2=${http2}: a wss:// WebSocket is tunnelled to Immich and echoes`, async t => {
    const certificate = await makeCertificate()
    const files = writeCertificateFiles(t.testdir(), certificate)
    const upstream = await startWsUpstream(t)
    const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, HTTP2: http2 })

    const ws = new WebSocket(`wss://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, { ca: certificate.cert })
    t.teardown(() => ws.terminate())
    await within(once(ws, 'open'), 5000, 'the wss handshake')
    ws.send('42["ping"]')
    const [echoed] = await within(once(ws, 'message'), 5000, 'the echo') as [Buffer]
    t.equal(echoed.toString(), '42["ping"]')
    t.equal(upstream.upgrades.length, 1)
    t.equal(upstream.upgrades[0].headers['x-forwarded-proto'], 'https', 'Immich hears the upgrade came over TLS')
    t.equal(upstream.upgrades[0].headers.host, `127.0.0.1:${proxy.port}`)
  })
}

t.test('a real socket.io-client connects over wss:// to /api/socket.io, gets an ack and a push', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  // Immich's gateway: socket.io at /api/socket.io, websocket transport
  const http = createServer()
  const server = new Server(http, { path: '/api/socket.io', transports: ['websocket'] })
  const protos: unknown[] = []
  server.on('connection', socket => {
    protos.push(socket.handshake.headers['x-forwarded-proto'])
    socket.on('ping-server', (payload: { n: number }, ack: (reply: unknown) => void) => {
      ack({ pong: payload.n + 1 })
      socket.emit('on_server_version', { major: 1, minor: 131, patch: 3 })
    })
  })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await server.close() })
  const proxy = await startProxy(t, `http://127.0.0.1:${(http.address() as AddressInfo).port}`, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })

  const client = io(proxy.url, { path: '/api/socket.io', transports: ['websocket'], reconnection: false, ca: certificate.cert })
  t.teardown(() => { client.disconnect() })
  await within(new Promise(resolve => client.once('connect', () => resolve(undefined))), 5000, 'socket.io to connect')
  t.equal(client.io.engine.transport.name, 'websocket')
  t.same(protos, ['https'])

  const push = new Promise(resolve => client.once('on_server_version', resolve))
  const ack = await within(client.timeout(5000).emitWithAck('ping-server', { n: 41 }), 6000, 'the ack') as unknown
  t.same(ack, { pong: 42 })
  t.same(await within(push, 5000, 'the push'), { major: 1, minor: 131, patch: 3 })
})
