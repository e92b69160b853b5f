// Embedding: a Fastify app of someone else's, with its own routes, carries Immich for one host
// name only (Immich must own the root path of its host). Requests and WebSocket upgrades for
// that host reach Immich with the forwarded headers, with or without a port in Host; the app's
// own host keeps its routes. The app gives its own routes a host constraint too: find-my-way
// prefers a more specific path to a constraint, so an unconstrained `/api/x` of the app would
// also answer `/api/x` on Immich's host.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import { app, parseConfig } from '../src/index.js'
import { startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

interface Answer { status?: number, body: string }

async function get (port: number, host: string, path: string): Promise<Answer> {
  const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  let body = ''
  for await (const chunk of res) body += String(chunk)
  return { status: res.statusCode, body }
}

/** The host app: its own routes on `/` and `/api/x` for www.example.org, and Immich for photos.example.org. */
async function hostApp (t: Test, upstream: string): Promise<{ server: FastifyInstance, port: number }> {
  const server = Fastify()
  const www = { constraints: { host: 'www.example.org' } }
  server.get('/', www, async () => 'host: home')
  server.get('/api/x', www, async () => 'host: api x')
  await server.register(app, { ...parseConfig({ UPSTREAM_URL: upstream }), serverName: 'photos.example.org' })
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  return { server, port: (server.server.address() as AddressInfo).port }
}

t.test('requests for the Immich host reach Immich, others the host app', async t => {
  const upstream = await startWsUpstream(t)
  upstream.server.removeAllListeners('request')
  upstream.server.on('request', (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({
      immich: req.url,
      host: req.headers.host,
      realIp: req.headers['x-real-ip'],
      forwardedFor: req.headers['x-forwarded-for'],
      proto: req.headers['x-forwarded-proto']
    }))
  })
  const { port } = await hostApp(t, upstream.url)

  for (const host of ['photos.example.org', 'photos.example.org:8080', 'Photos.Example.Org']) {
    for (const path of ['/', '/api/x', '/api/server/ping?x=1']) {
      const answer = await get(port, host, path)
      t.equal(answer.status, 200, `${host}${path}`)
      t.same(JSON.parse(answer.body || '{}'), { immich: path, host, realIp: '127.0.0.1', forwardedFor: '127.0.0.1', proto: 'http' }, `${host}${path} reaches Immich with forwarded headers`)
    }
  }
  t.same(await get(port, 'www.example.org', '/'), { status: 200, body: 'host: home' })
  t.same(await get(port, 'www.example.org', '/api/x'), { status: 200, body: 'host: api x' })
  for (const [host, path] of [['www.example.org', '/api/server/ping'], ['photos.example.org.evil.test', '/'], ['other.example.org', '/api/x']]) {
    const answer = await get(port, host, path)
    t.equal(answer.status, 404, `${host}${path}: the host app's 404, not Immich`)
    t.notMatch(answer.body, /immich/)
  }
})

t.test('a WebSocket to the Immich host is tunnelled; one to another host does not reach Immich', async t => {
  const upstream = await startWsUpstream(t)
  const { port } = await hostApp(t, upstream.url)
  const path = '/api/socket.io/?EIO=4&transport=websocket'

  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host: 'photos.example.org' } })
  t.teardown(() => ws.terminate())
  await within(once(ws, 'open'), 5000, 'the tunnel to open')
  ws.send('hello immich')
  const [echo] = await within(once(ws, 'message'), 5000, 'the echo') as [Buffer]
  t.equal(echo.toString(), 'hello immich')
  t.equal(upstream.upgrades.length, 1)
  t.equal(upstream.upgrades[0].headers.host, 'photos.example.org')
  t.equal(upstream.upgrades[0].headers['x-forwarded-for'], '127.0.0.1')

  const other = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host: 'www.example.org' } })
  other.on('error', () => {})
  t.teardown(() => other.terminate())
  const [, response] = await within(once(other, 'unexpected-response'), 5000, 'the refusal') as [unknown, IncomingMessage]
  t.equal(response.statusCode, 404, 'the host app has no such route')
  t.equal(upstream.upgrades.length, 1, 'Immich never saw it')
})
