// The WebSockets a shutdown ends are ended so that Immich's socket.io clients come back on their
// own: the tunnel is cut (it sees bytes, not frames, so there is no 1001 to send), which
// socket.io reads as "transport close" and answers by reconnecting, here to the proxy started
// in the old one's place (a container restart).
import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io } from 'socket.io-client'
import { spawnServer } from './helpers/ops.js'
import { within } from './helpers/wait.js'

t.test('after SIGTERM a socket.io client sees "transport close" and reconnects to the next proxy', async t => {
  const http = createServer()
  const server = new Server(http, { path: '/api/socket.io', transports: ['websocket'] })
  let connections = 0
  server.on('connection', () => { connections++ })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await server.close() })
  const upstream = `http://127.0.0.1:${(http.address() as AddressInfo).port}`

  const first = await spawnServer(t, { UPSTREAM_URL: upstream })
  const client = io(first.url, { path: '/api/socket.io', transports: ['websocket'], reconnectionDelay: 200, reconnectionDelayMax: 500 })
  t.teardown(() => { client.disconnect() })
  const connected = async (): Promise<void> => { await new Promise<void>(resolve => client.once('connect', () => resolve())) }
  await within(connected(), 10_000, 'socket.io to connect')
  t.equal(connections, 1)

  const disconnected = new Promise<string>(resolve => client.once('disconnect', reason => resolve(reason)))
  first.child.kill('SIGTERM')
  const reason = await within(disconnected, 10_000, 'the disconnect')
  t.equal(reason, 'transport close', 'a reason socket.io reconnects after')
  t.same(await within(first.exited, 10_000, 'the exit'), { code: 0, signal: null })
  t.ok(client.active, 'the client is trying to reconnect')

  // listening before the new proxy starts: the client retries every 200-500 ms and may be back
  // before spawnServer has seen the new proxy ready
  const reconnected = connected()
  await spawnServer(t, { UPSTREAM_URL: upstream, PORT: String(first.port) })
  await within(reconnected, 15_000, 'the reconnect')
  t.ok(client.connected, 'connected again, through the new proxy')
  t.equal(connections, 2)
})
