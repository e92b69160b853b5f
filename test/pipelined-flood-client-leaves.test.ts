// A client that pipelines thousands of requests behind a slow one and then leaves: the requests
// still waiting their turn are dropped with the connection, and the proxy keeps serving.
import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { spawnServer } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

const PIPELINED = 10_000

t.test('10 000 pipelined requests cut off by the client: the process lives on and answers', async t => {
  let slowArrived = false
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/slow') {
      slowArrived = true
      // answered only once the client has gone, so every other request is still waiting then
      setTimeout(() => { if (!res.destroyed) res.end('slow') }, 1500)
    } else {
      res.end('ok')
    }
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })

  const socket = connect(proxy.port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('GET /slow HTTP/1.1\r\nHost: immich.test\r\n\r\n' + 'GET /api/server/ping HTTP/1.1\r\nHost: immich.test\r\n\r\n'.repeat(PIPELINED))
  await waitFor(() => slowArrived, 30_000, 'the slow request at Immich')
  // time for the proxy to read what it will of the rest
  await new Promise(resolve => setTimeout(resolve, 300))
  socket.destroy()
  await new Promise(resolve => setTimeout(resolve, 500))

  t.equal(proxy.child.exitCode, null, proxy.child.exitCode === null ? 'still running' : proxy.output())
  t.equal(proxy.child.signalCode, null, 'not killed')
  const response = await request(`${proxy.url}/api/server/ping`, { headers: { host: 'immich.test' } })
  t.equal(response.statusCode, 200, 'answers a normal request')
  t.equal(await response.body.text(), 'ok')
})
