// MAX_CONNECTIONS caps the client connections of a listener: past it Node closes a new
// connection as soon as it is accepted, and those already open are served. The default comes
// from the file-descriptor limit (src/connection-limits.ts), logged at start.
import t from 'tap'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { startProxy, startUpstream } from './helper.js'
import { connectionLimits, FD_RESERVE, fdLimit } from '../src/connection-limits.js'
import { parseConfig } from '../src/config.js'
import { spawnServer, logged } from './helpers/ops.js'
import { statusWith } from './helpers/access-key.js'
import { waitFor } from './helpers/wait.js'

async function openConnection (port: number): Promise<{ socket: Socket, closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1')
  let closed = false
  socket.on('error', () => {})
  socket.on('close', () => { closed = true })
  await once(socket, 'connect')
  return { socket, closed: () => closed }
}

t.test('connections past MAX_CONNECTIONS are closed; open ones are served', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.end('ok') })
  const proxy = await startProxy(t, upstream.url, { MAX_CONNECTIONS: '3' })
  const held = await Promise.all([0, 1, 2].map(async () => await openConnection(proxy.port)))
  const extra = await Promise.all([0, 1].map(async () => await openConnection(proxy.port)))
  await waitFor(() => extra.every(connection => connection.closed()), 5000, 'the connections past the cap to be closed')
  t.same(extra.map(connection => connection.closed()), [true, true], 'the connections past the cap are closed')
  t.same(held.map(connection => connection.closed()), [false, false, false], 'the first three stay open')
  held[0].socket.write('GET /x HTTP/1.1\r\nHost: immich.test\r\n\r\n')
  const [answer] = await once(held[0].socket, 'data') as [Buffer]
  t.match(answer.toString(), /^HTTP\/1\.1 200 /, 'an open connection is served')
  for (const connection of held) connection.socket.destroy()
  // the proxy counts a connection out a moment after this side closes it
  await waitFor(async () => await statusWith(`${proxy.url}/x`).catch(() => 0) === 200, 5000, 'new connections to be taken again once below the cap', { intervalMs: 100 })
})

t.test('the default is derived from the fd limit; a value above it is warned about', async t => {
  t.equal(fdLimit(t.testdir({ limits: 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            4096                 8192                 files\n' }) + '/limits'), 4096)
  t.same(connectionLimits({ maxConnections: undefined, upstreamMaxConnections: 1024 }, 4096), {
    maxConnections: (4096 - FD_RESERVE) / 2, upstreamMaxConnections: 1024, fdLimit: 4096, fdLimitKnown: true, warnings: []
  })
  t.match(connectionLimits({ maxConnections: 5000, upstreamMaxConnections: 10 }, 4096).warnings, [/^MAX_CONNECTIONS=5000 is more than the file-descriptor limit \(4096\) allows/])
  t.match(connectionLimits({ maxConnections: undefined, upstreamMaxConnections: 1024 }, 1024).warnings, [/^UPSTREAM_MAX_CONNECTIONS=1024 with MAX_CONNECTIONS=480 can exceed the file-descriptor limit \(1024\)/])
  t.equal(connectionLimits({ maxConnections: undefined, upstreamMaxConnections: 1024, httpPort: 8080 }, 4096).maxConnections, (4096 - FD_RESERVE) / 4, 'with HTTP_PORT, the two listeners share the client half')
  t.match(connectionLimits({ maxConnections: 2100, upstreamMaxConnections: 10, httpPort: 8080 }, 4096).warnings, [/^MAX_CONNECTIONS=2100 is more than the file-descriptor limit \(4096\) allows/])
  t.equal(connectionLimits({ maxConnections: undefined, upstreamMaxConnections: undefined }, 1024).upstreamMaxConnections, (1024 - FD_RESERVE) / 2, 'under a low fd limit, Immich\'s side gets the other half')
  t.equal(connectionLimits({ maxConnections: undefined, upstreamMaxConnections: undefined }, 65536).upstreamMaxConnections, 1024, 'else 1024')
  t.same(connectionLimits({ maxConnections: undefined, upstreamMaxConnections: undefined }, 1024).warnings, [], 'the defaults fit the fd limit')
  t.equal(connectionLimits({ maxConnections: 0, upstreamMaxConnections: 1024 }, 'unlimited').maxConnections, 0, '0: no limit')
  t.match(connectionLimits({ maxConnections: 0, upstreamMaxConnections: 1024 }, 4096).warnings, [/^MAX_CONNECTIONS=0: no cap on client connections/])
  t.equal(parseConfig({ MAX_CONNECTIONS: '0' }).maxConnections, 0)
  t.equal(parseConfig({}).maxConnections, undefined)
  t.throws(() => parseConfig({ MAX_CONNECTIONS: 'many' }), { message: 'MAX_CONNECTIONS="many" is not a whole number (0 = no limit), or empty to derive it from the file-descriptor limit, e.g. MAX_CONNECTIONS=4096' })
  t.throws(() => parseConfig({ UPSTREAM_MAX_CONNECTIONS: '0' }), { message: 'UPSTREAM_MAX_CONNECTIONS="0" is not a whole number from 1, e.g. UPSTREAM_MAX_CONNECTIONS=1024' })
})

t.test('the process logs its limits at start, derived from ulimit -n', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.end('ok') })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, UPSTREAM_MAX_CONNECTIONS: '200' }, { wrap: command => ['sh', '-c', 'ulimit -n 512 && exec "$0" "$@"', ...command] })
  const [limits] = logged(proxy.lines, 'connection limits')
  t.match(limits, { maxConnections: 224, fdLimit: 512, fdLimitKnown: true, upstreamMaxConnections: 200 })
  t.same(proxy.lines.filter(line => line.level === 40), [], 'no warning when the limits fit')
})
