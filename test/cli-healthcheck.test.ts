// `immich-proxy --healthcheck`, the container's HEALTHCHECK: exit 0 while the running proxy's
// admin listener answers /livez, 1 with a one-line reason when nothing does.
import t from 'tap'
import { startUpstream } from './helper.js'
import { runServer, spawnServer, type ServerExit } from './helpers/ops.js'
import { closedPort } from './helpers/websocket.js'

async function healthcheck (env: Record<string, string>): Promise<ServerExit> {
  return await runServer(env, { args: ['--healthcheck'] })
}

t.test('exit 0 against a running proxy, 1 when nothing listens', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  // the same environment as the proxy, as in the container
  t.same(await healthcheck({ UPSTREAM_URL: upstream.url, ADMIN_PORT: String(proxy.adminPort) }), { code: 0, stdout: '', stderr: '' })
  // an admin listener on every address is asked on loopback
  t.same(await healthcheck({ UPSTREAM_URL: upstream.url, ADMIN_HOST: '0.0.0.0', ADMIN_PORT: String(proxy.adminPort) }), { code: 0, stdout: '', stderr: '' })

  const nothing = await healthcheck({ ADMIN_PORT: String(await closedPort()) })
  t.equal(nothing.code, 1)
  t.equal(nothing.stdout, '')
  t.match(nothing.stderr, /^immich-proxy: health check failed: .+\n$/)

  const off = await healthcheck({ ADMIN_PORT: 'off' })
  t.same(off, { code: 1, stdout: '', stderr: 'immich-proxy: --healthcheck needs the admin listener; ADMIN_PORT is off\n' })
})
