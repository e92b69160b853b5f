// One process, one set of pools to Immich (plugins/forwarding/upstream.ts, ImmichUpstream): the
// well-known document asked on the HTTPS listener and on HTTP_PORT, and /readyz's check of
// Immich, go over the same kept-alive connection, not one pool per listener and a fetch apart.
import t from 'tap'
import { request as httpsRequest } from 'node:https'
import { startUpstream } from './helper.js'
import { getJson, startListeners } from './helpers/ops.js'
import { closedPort } from './helpers/websocket.js'

async function getInsecure (url: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    httpsRequest(url, { rejectUnauthorized: false }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject).end()
  })
}

t.test('the well-known route on both listeners and readiness share one connection to Immich', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : '{"api":{"endpoint":"/api"}}')
  })
  let connections = 0
  upstream.server.on('connection', () => { connections++ })
  const httpPort = await closedPort()
  const proxy = await startListeners(t, upstream.url, { TLS_SELF_SIGNED: 'true', HTTP_PORT: String(httpPort) })
  const before = connections

  t.equal(await getInsecure(`https://127.0.0.1:${proxy.port}/.well-known/immich`), 200, 'on the HTTPS listener')
  const plain = await fetch(`http://127.0.0.1:${httpPort}/.well-known/immich`)
  await plain.body?.cancel()
  t.equal(plain.status, 200, 'on HTTP_PORT')
  t.match(await getJson(`${proxy.adminUrl}/readyz`), { status: 200, body: { immich: 'up' } }, 'readiness asks Immich')
  t.equal(connections - before, 1, 'all three over one connection to Immich')
})
