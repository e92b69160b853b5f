import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io } from 'socket.io-client'
import { startProxy } from './helper.js'
import { within } from './helpers/wait.js'

t.test('a real socket.io-client connects through the proxy, gets an ack and a server push', async t => {
  // Immich's gateway: socket.io at /api/socket.io, the token in a header, events pushed to the app
  const http = createServer()
  const server = new Server(http, { path: '/api/socket.io', transports: ['websocket'] })
  const tokens: unknown[] = []
  server.on('connection', socket => {
    tokens.push(socket.handshake.headers['x-immich-user-token'])
    socket.on('ping-server', (payload: { n: number }, ack: (reply: unknown) => void) => {
      ack({ pong: payload.n + 1 })
      socket.emit('on_server_version', { major: 1, minor: 131, patch: 3 })
    })
  })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await server.close() })
  const proxy = await startProxy(t, `http://127.0.0.1:${(http.address() as AddressInfo).port}`)

  const client = io(proxy.url, {
    path: '/api/socket.io',
    transports: ['websocket'],
    reconnection: false,
    extraHeaders: { 'x-immich-user-token': 'mobile-token' }
  })
  t.teardown(() => { client.disconnect() })
  await within(new Promise(resolve => client.once('connect', () => resolve(undefined))), 5000, 'socket.io to connect')
  t.equal(client.io.engine.transport.name, 'websocket')
  t.same(tokens, ['mobile-token'], 'the mobile app\'s header reached the gateway')

  const push = new Promise(resolve => client.once('on_server_version', resolve))
  const ack = await within(client.timeout(5000).emitWithAck('ping-server', { n: 41 }), 6000, 'the ack') as unknown
  t.same(ack, { pong: 42 })
  t.same(await within(push, 5000, 'the push'), { major: 1, minor: 131, patch: 3 })
})
