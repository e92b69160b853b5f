// SIGTERM to the real process (what `docker stop` sends PID 1): it stops accepting, lets the
// upload in flight finish with Immich's answer, ends the open WebSocket, tells readiness probes
// it is going, and exits 0.
import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { getJson, logged, pacedUpload, spawnServer } from './helpers/ops.js'
import { closeOf, openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const UPLOAD = 2_000_000

/** How a fresh TCP connection to `port` ends: 'connected', or the error code. */
async function connectOutcome (port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    return 'connected'
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  } finally {
    socket.destroy()
  }
}

t.test('SIGTERM mid-upload: the upload completes, new connections are refused, exit 0', async t => {
  let received = 0
  const upstream = await startWsUpstream(t)
  upstream.server.removeAllListeners('request')
  upstream.server.on('request', (req, res) => {
    if (req.url === '/api/server/ping') {
      res.end('{"res":"pong"}')
      return
    }
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      received += chunk.length
    })
    req.on('end', () => res.end(JSON.stringify({ received: bytes })))
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  const ws = await openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`)
  const wsClosed = closeOf(ws)

  // 2 MB in 16 pieces 200 ms apart: about 3 s
  const upload = pacedUpload(proxy.port, '/api/assets', UPLOAD, 16, 200)
  await waitFor(() => received > 0, 5000, 'the upload to reach Immich')
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')
  await waitFor(() => logged(proxy.lines, 'closing: no new connections; waiting for requests in flight').length === 1, 5000, 'the drain to begin')
  t.ok(upload.sent() < UPLOAD, `the upload was in flight at SIGTERM (${upload.sent()} of ${UPLOAD} bytes sent)`)

  t.equal(await connectOutcome(proxy.port), 'ECONNREFUSED', 'a new connection during the drain is refused')
  t.same(await getJson(proxy.adminUrl + '/readyz'), {
    status: 503,
    body: { status: 'not ready', immich: 'up', underPressure: false, closing: true }
  }, 'readiness reports the drain')
  t.same(await getJson(proxy.adminUrl + '/livez'), { status: 200, body: { status: 'ok' } }, 'liveness holds during the drain')
  t.same(await within(wsClosed, 5000, 'the WebSocket to be ended'), { code: 1006, reason: '' },
    'the WebSocket is ended (abruptly: the tunnel sees no frames to send a 1001 with)')
  t.ok(upload.sent() < UPLOAD, 'the WebSocket ended while the upload was still in flight')

  t.same(await within(upload.done, 10_000, 'the upload'), { status: 200, body: JSON.stringify({ received: UPLOAD }) }, 'the upload completes with Immich\'s answer')
  const exit = await within(proxy.exited, 10_000, 'the exit')
  const drained = Date.now() - signalled
  t.same(exit, { code: 0, signal: null }, 'exit code 0')
  const [closed] = logged(proxy.lines, 'closed')
  t.type(closed?.drainMs, 'number', 'the drain time is logged')
  t.ok(drained < 10_000, `exited ${drained} ms after SIGTERM (drain logged as ${String(closed?.drainMs)} ms)`)
  t.comment(`drain: ${String(closed?.drainMs)} ms logged, ${drained} ms from SIGTERM to exit`)
  t.equal(await connectOutcome(Number(proxy.adminPort)), 'ECONNREFUSED', 'the admin listener is closed too')
})
