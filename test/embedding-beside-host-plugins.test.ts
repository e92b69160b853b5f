// An embedding host app usually has plugins of its own that immich-proxy also uses: its own
// WebSocket routes (@fastify/websocket) and its own load shedding (@fastify/under-pressure).
// immich-proxy's app registers beside them: both WebSocket servers work, each on its host.
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import underPressure from '@fastify/under-pressure'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import { app, parseConfig } from '../src/index.js'
import { startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

t.test('a host app with @fastify/under-pressure can register the app', async t => {
  const upstream = await startWsUpstream(t)
  const server = Fastify()
  t.teardown(() => server.close())
  await server.register(underPressure, { maxEventLoopDelay: 1000 })
  await server.register(app, { ...parseConfig({ UPSTREAM_URL: upstream.url }), serverName: 'photos.example.org' })
  await server.ready()
  t.ok(server.isUnderPressure() === false, 'the host app\'s own under-pressure still answers')
})

for (const order of ['before', 'after'] as const) {
  t.test(`the host app's @fastify/websocket route and Immich's tunnel, side by side (@fastify/websocket registered ${order} the app)`, async t => {
    const upstream = await startWsUpstream(t)
    const server = Fastify()
    t.teardown(() => server.close())
    const immich = { ...parseConfig({ UPSTREAM_URL: upstream.url }), serverName: 'photos.example.org' }
    if (order === 'after') await server.register(app, immich)
    await server.register(fastifyWebsocket)
    server.get('/chat', { websocket: true, constraints: { host: 'www.example.org' } }, socket => {
      socket.on('message', data => socket.send(`chat: ${String(data)}`))
    })
    if (order === 'before') await server.register(app, immich)
    await server.listen({ host: '127.0.0.1', port: 0 })
    const port = (server.server.address() as AddressInfo).port

    async function exchange (host: string, path: string, message: string): Promise<string> {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host } })
      ws.on('error', () => {})
      t.teardown(() => ws.terminate())
      await within(once(ws, 'open'), 5000, `${host}${path} to open`)
      ws.send(message)
      const [answer] = await within(once(ws, 'message'), 5000, `${host}${path} to answer`) as [Buffer]
      ws.close()
      return answer.toString()
    }
    t.equal(await exchange('www.example.org', '/chat', 'hi'), 'chat: hi', 'the host app\'s own WebSocket route')
    t.equal(await exchange('photos.example.org', '/api/socket.io/?EIO=4&transport=websocket', 'hi immich'), 'hi immich', 'Immich\'s socket.io, tunnelled')
    t.equal(upstream.upgrades.length, 1, 'only Immich\'s upgrade reached Immich')
  })
}
