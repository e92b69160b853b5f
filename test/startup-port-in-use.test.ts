// A listener that cannot bind stops the start with one line naming the address, even when
// another listener is already up.
import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startUpstream } from './helper.js'
import { runServer } from './helpers/ops.js'
import { closedPort } from './helpers/websocket.js'

t.test('ADMIN_PORT in use: exit 1 with one line', async t => {
  const taken = createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const takenPort = (taken.address() as AddressInfo).port
  const upstream = await startUpstream(t, (req, res) => res.end())
  const port = await closedPort()

  const exit = await runServer({ UPSTREAM_URL: upstream.url, HOST: '127.0.0.1', PORT: String(port), ADMIN_PORT: String(takenPort) })
  t.equal(exit.code, 1)
  t.equal(exit.stderr, `immich-proxy: cannot listen (EADDRINUSE) on 127.0.0.1:${takenPort}; check HOST, PORT, HTTP_PORT and ADMIN_PORT\n`)
  t.match(exit.stdout, `Server listening at http://127.0.0.1:${port}`, 'the main listener had started')
})
