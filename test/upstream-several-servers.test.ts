// Several Immich servers behind one proxy (UPSTREAM_URL a list): requests and WebSockets spread
// over those in service, a server that dies is taken out (its refused connections retried once on
// another, nothing sent twice), it comes back after answering its health check, and with every
// one down the proxy answers 502 at once and is not ready.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { Server as SocketIoServer } from 'socket.io'
import { io } from 'socket.io-client'
import { parseConfig, ConfigError } from '../src/config.js'
import { ImmichServer, ImmichServers } from '../plugins/forwarding/immich-servers.js'
import { startProxy } from './helper.js'
import { metricsOf, sample, startListeners } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'
import type { Dispatcher } from 'undici'

/** A stand-in Immich server that can die and come back on its port: answers its name, pings with pong, socket.io with its name. */
interface StandIn {
  name: string
  url: string
  /** `METHOD /path` of every request but the health checks. */
  received: string[]
  /** Requests still being received (an upload whose body is still coming). */
  receiving: IncomingMessage[]
  kill: () => Promise<void>
  revive: () => Promise<void>
}

async function startImmich (t: Test, name: string): Promise<StandIn> {
  const received: string[] = []
  const receiving: IncomingMessage[] = []
  let server: Server | undefined
  let socketIo: SocketIoServer | undefined
  const sockets = new Set<Socket>()
  let port = 0
  async function listen (): Promise<void> {
    const http = createServer((req, res) => {
      if (req.url === '/api/server/ping') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"res":"pong"}')
        return
      }
      received.push(`${req.method ?? ''} ${req.url ?? ''}`)
      receiving.push(req)
      req.resume()
      req.on('end', () => {
        receiving.splice(receiving.indexOf(req), 1)
        res.end(name)
      })
    })
    http.on('connection', socket => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    socketIo = new SocketIoServer(http, { path: '/api/socket.io', transports: ['websocket'] })
    socketIo.on('connection', socket => socket.emit('server', name))
    await new Promise<void>(resolve => http.listen(port, '127.0.0.1', resolve))
    port = (http.address() as AddressInfo).port
    server = http
  }
  async function kill (): Promise<void> {
    const http = server
    if (http === undefined) return
    server = undefined
    // as a server that dies: its connections cut, no goodbye (socket.io's own disconnect would
    // tell clients not to reconnect)
    for (const socket of sockets) socket.destroy()
    await new Promise(resolve => http.close(resolve))
    socketIo?.close()
  }
  await listen()
  t.teardown(kill)
  return { name, url: `http://127.0.0.1:${port}`, received, receiving, kill, revive: listen }
}

async function get (url: string): Promise<{ status: number, body: string }> {
  const response = await request(url)
  return { status: response.statusCode, body: await response.body.text() }
}

async function gets (url: string, count: number): Promise<string[]> {
  const bodies: string[] = []
  for (let i = 0; i < count; i++) {
    const { status, body } = await get(url)
    bodies.push(status === 200 ? body : `status ${status}`)
  }
  return bodies
}

const tally = (bodies: string[]): Record<string, number> =>
  bodies.reduce<Record<string, number>>((counts, body) => ({ ...counts, [body]: (counts[body] ?? 0) + 1 }), {})

t.test('requests go to each server in turn; one that dies is taken out at once and back once it answers again', async t => {
  const a = await startImmich(t, 'a')
  const b = await startImmich(t, 'b')
  const proxy = await startProxy(t, '', { UPSTREAM_URL: `${a.url},${b.url}`, UPSTREAM_HEALTH_INTERVAL: '200ms', LOG_LEVEL: 'info' })

  t.same(tally(await gets(`${proxy.url}/api/assets`, 10)), { a: 5, b: 5 }, 'one after another, each gets half')

  await b.kill()
  t.same(tally(await gets(`${proxy.url}/api/assets`, 10)), { a: 10 }, 'b dead: every request answered, by a (b\'s refused connection retried on a)')
  t.equal(b.received.length, 5, 'b received nothing more')
  const out = proxy.log.find(40, /taken out of service/)
  t.equal(out.length, 1, 'one warning as b is taken out')
  t.match(out[0], { upstream: b.url, failure: 'ECONNREFUSED' })

  await b.revive()
  await waitFor(() => proxy.log.find(30, /answers again: back in service/).length > 0, 5000, 'b back in service')
  t.match(proxy.log.find(30, /answers again/)[0], { upstream: b.url })
  t.same(tally(await gets(`${proxy.url}/api/assets`, 10)), { a: 5, b: 5 }, 'b back: each gets half again')
})

t.test('round-robin: each in turn even while one is busy; least-connections: the less busy one', async t => {
  const pool = {} as Dispatcher
  const servers = ['http://a', 'http://b', 'http://c'].map(origin => new ImmichServer(origin, pool, pool))
  const roundRobin = new ImmichServers(servers, { policy: 'round-robin' })
  servers[0].active = 5
  t.same([1, 2, 3, 4].map(() => roundRobin.pick()?.origin), ['http://a', 'http://b', 'http://c', 'http://a'], 'round-robin ignores what each is doing')
  const leastConnections = new ImmichServers(servers, { policy: 'least-connections' })
  servers[1].active = 2
  servers[2].active = 1
  t.equal(leastConnections.pick()?.origin, 'http://c', 'the one with the fewest')
  servers[2].up = false
  t.equal(leastConnections.pick()?.origin, 'http://b', 'among those in service')
  t.equal(leastConnections.pick(servers[1])?.origin, 'http://a', 'other than the one tried')
  servers[0].up = false
  servers[1].up = false
  t.equal(leastConnections.pick(), undefined, 'none when none is in service')
})

t.test('an upload in flight to a server that dies fails, and is not sent again to the other', async t => {
  const a = await startImmich(t, 'a')
  const b = await startImmich(t, 'b')
  const proxy = await startProxy(t, '', { UPSTREAM_URL: `${a.url},${b.url}`, UPSTREAM_HEALTH_INTERVAL: '200ms' })

  const upload = httpRequest(`${proxy.url}/api/assets`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } })
  const outcome = new Promise<string>(resolve => {
    upload.on('response', response => { response.resume(); resolve(`status ${response.statusCode ?? 0}`) })
    upload.on('error', error => resolve(`cut (${(error as NodeJS.ErrnoException).code ?? error.message})`))
  })
  upload.write(Buffer.alloc(64 * 1024))
  await waitFor(() => a.receiving.length + b.receiving.length > 0, 5000, 'the upload to reach a server')
  const [dying, other] = a.receiving.length > 0 ? [a, b] : [b, a]
  await dying.kill()
  const result = await outcome
  t.match(result, /^(status 502|cut)/, `the client sees the upload fail: ${result}`)
  upload.destroy()
  t.same(other.received, [], 'the other server was not sent it')
  t.same(tally(await gets(`${proxy.url}/api/assets`, 4)), { [other.name]: 4 }, 'and takes the requests after it')
})

t.test('every server down: 502 at once, /readyz 503; one back: served and ready; /metrics by server', async t => {
  const a = await startImmich(t, 'a')
  const b = await startImmich(t, 'b')
  const proxy = await startListeners(t, `${a.url},${b.url}`, { UPSTREAM_HEALTH_INTERVAL: '200ms', UPSTREAM_POLICY: 'round-robin' })
  await gets(`${proxy.url}/api/assets`, 4)
  let metrics = await metricsOf(proxy.adminUrl)
  t.equal(sample(metrics, 'immich_proxy_upstream_up', `upstream="${a.url}"`), 1, 'a in service')
  t.equal(sample(metrics, 'immich_proxy_upstream_up', `upstream="${b.url}"`), 1, 'b in service')
  t.equal(sample(metrics, 'immich_proxy_upstream_requests_total', `upstream="${a.url}"`), 2, 'two requests to a')
  t.equal(sample(metrics, 'immich_proxy_upstream_requests_total', `upstream="${b.url}"`), 2, 'two to b')

  await a.kill()
  await b.kill()
  await waitFor(async () => (await get(`${proxy.adminUrl}/readyz`)).status === 503, 5000, '/readyz to say not ready')
  const readyz = JSON.parse((await get(`${proxy.adminUrl}/readyz`)).body) as { immich: string }
  t.equal(readyz.immich, 'down')
  const started = Date.now()
  const refused = await get(`${proxy.url}/api/assets`)
  t.equal(refused.status, 502, '502')
  t.ok(Date.now() - started < 1000, 'at once')
  t.match(JSON.parse(refused.body), { statusCode: 502, error: 'Bad Gateway' })
  metrics = await metricsOf(proxy.adminUrl)
  t.equal(sample(metrics, 'immich_proxy_upstream_up', `upstream="${a.url}"`), 0, 'a out of service')
  t.equal(sample(metrics, 'immich_proxy_upstream_up', `upstream="${b.url}"`), 0, 'b out of service')

  await a.revive()
  await waitFor(async () => (await get(`${proxy.adminUrl}/readyz`)).status === 200, 5000, '/readyz ready again')
  t.same(tally(await gets(`${proxy.url}/api/assets`, 3)), { a: 3 }, 'a serves again')
})

t.test('socket.io: a client whose server dies reconnects through the proxy onto the other', async t => {
  const a = await startImmich(t, 'a')
  const b = await startImmich(t, 'b')
  // no timed check in this test's time: the dead server is found by its refused upgrade alone
  const proxy = await startProxy(t, '', { UPSTREAM_URL: `${a.url},${b.url}`, UPSTREAM_HEALTH_INTERVAL: '1h', LOG_LEVEL: 'info' })
  const connect = (servers: string[], reconnection = true): ReturnType<typeof io> => {
    const client = io(proxy.url, { path: '/api/socket.io', transports: ['websocket'], reconnection, reconnectionDelay: 100, reconnectionDelayMax: 200 })
    t.teardown(() => client.close())
    client.on('server', (name: string) => servers.push(name))
    return client
  }
  const first: string[] = []
  connect(first)
  await waitFor(() => first.length === 1, 5000, 'the first connection')
  const dying = first[0] === 'a' ? a : b
  const survivor = dying === a ? b : a
  await dying.kill()
  await waitFor(() => first.length === 2, 5000, 'the reconnection', { last: () => first.join(',') })
  t.same(first, [dying.name, survivor.name], `connected to ${dying.name}, then, once it died, to ${survivor.name}`)
  // the survivor has a tunnel open and the dead one none: least-connections picks the dead one
  // unless it is out of service already, and its refused upgrade goes to the survivor: the
  // client's first attempt must succeed (it does not try again here)
  const second: string[] = []
  connect(second, false)
  await waitFor(() => second.length === 1, 5000, 'a new client\'s connection')
  t.same(second, [survivor.name], 'a new client connects to the survivor')
  t.match(proxy.log.find(40, /taken out of service/), [{ upstream: dying.url, failure: 'ECONNREFUSED' }], 'the dead server taken out for its refused upgrade')
})

t.test('UPSTREAM_URL lists, UPSTREAM_POLICY and UPSTREAM_HEALTH_INTERVAL: wrong values are named at start', async t => {
  const config = parseConfig({ UPSTREAM_URL: 'http://a:2283, http://b:2283' })
  t.same(config.upstreams, ['http://a:2283', 'http://b:2283'], 'spaces around commas are fine')
  t.equal(config.upstream, 'http://a:2283', 'the first is `upstream`')
  t.equal(config.upstreamPolicy, 'least-connections', 'least-connections by default')
  t.equal(config.upstreamHealthInterval, 10_000, 'checked every 10 s by default')
  const problems = (env: Record<string, string>): string => {
    try {
      parseConfig(env)
      return 'no error'
    } catch (error) {
      return (error as ConfigError).message
    }
  }
  t.match(problems({ UPSTREAM_URL: 'http://a:2283,http://b:2283/immich' }), /UPSTREAM_URL=.* has "http:\/\/b:2283\/immich", which has a path/)
  t.match(problems({ UPSTREAM_URL: 'http://a:2283,http://a:2283/' }), /UPSTREAM_URL=.* names http:\/\/a:2283 twice/)
  t.match(problems({ UPSTREAM_URL: 'http://a:2283,' }), /UPSTREAM_URL=/)
  t.match(problems({ UPSTREAM_POLICY: 'random' }), /UPSTREAM_POLICY="random" is not one of least-connections, round-robin/)
  t.match(problems({ UPSTREAM_HEALTH_INTERVAL: '0' }), /UPSTREAM_HEALTH_INTERVAL="0" is 0/)
})
