// The admin listener (ADMIN_PORT), as src/server.ts starts it: liveness is the process, readiness
// is Immich answering its own ping route, and the listener stays on loopback unless told.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { startUpstream } from './helper.js'
import { getJson, startListeners } from './helpers/ops.js'

t.test('/livez is 200; /readyz follows Immich\'s /api/server/ping', async t => {
  let pong = true
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/api/server/ping' && pong) {
      res.setHeader('content-type', 'application/json')
      res.end('{"res":"pong"}')
    } else {
      res.statusCode = 503
      res.end('starting')
    }
  })
  const proxy = await startListeners(t, upstream.url)

  t.same(await getJson(proxy.adminUrl + '/livez'), { status: 200, body: { status: 'ok' } })
  t.same(await getJson(proxy.adminUrl + '/readyz'), {
    status: 200,
    body: { status: 'ready', immich: 'up', underPressure: false, closing: false }
  })
  t.equal(upstream.requests.at(-1)?.url, '/api/server/ping', 'readiness asked Immich')

  // Immich up but not answering its ping yet (still migrating its database, say)
  pong = false
  t.same(await getJson(proxy.adminUrl + '/readyz'), {
    status: 503,
    body: { status: 'not ready', immich: 'down', underPressure: false, closing: false }
  })
  t.same(await getJson(proxy.adminUrl + '/livez'), { status: 200, body: { status: 'ok' } }, 'still alive')

  // Immich gone altogether: nothing listens on its port
  upstream.server.closeAllConnections()
  await new Promise<void>(resolve => upstream.server.close(() => resolve()))
  t.same(await getJson(proxy.adminUrl + '/readyz'), {
    status: 503,
    body: { status: 'not ready', immich: 'down', underPressure: false, closing: false }
  })
  t.same(await getJson(proxy.adminUrl + '/livez'), { status: 200, body: { status: 'ok' } }, 'still alive')
})

t.test('the admin listener binds to 127.0.0.1 unless ADMIN_HOST says otherwise', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end())
  const proxy = await startListeners(t, upstream.url)
  const admin = proxy.running.admin?.server.address() as AddressInfo
  t.equal(admin.address, '127.0.0.1')
  t.equal(admin.port, proxy.adminPort)

  const off = await startListeners(t, upstream.url, { ADMIN_PORT: 'off' })
  t.equal(off.running.admin, undefined, 'ADMIN_PORT=off starts no admin listener')
})
