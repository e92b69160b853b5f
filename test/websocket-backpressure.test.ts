import t from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type WebSocket from 'ws'
import { residentBytes } from './helpers/bodies.js'
import { spawnServer } from './helpers/ops.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor } from './helpers/wait.js'

const MB = 1024 * 1024
const TOTAL = 200 * MB
const CHUNK = 64 * 1024

type WithSocket = WebSocket & { _socket: Socket }

t.test('a paused reader holds back a fast upstream instead of growing the proxy', async t => {
  const upstream = await startWsUpstream(t)
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  const rss = async (): Promise<number> => await residentBytes(proxy.child.pid as number)
  const [[upstreamSide], client] = await Promise.all([
    upstream.nextConnection(),
    openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket`, [], { perMessageDeflate: false })
  ])

  let received = 0
  let inOrder = true
  client.on('message', (data: Buffer) => {
    inOrder &&= data.length === CHUNK && data.readUInt32BE(0) === received / CHUNK
    received += data.length
  })
  client.pause()

  // Immich sending as fast as the connection takes it; it keeps at most 1 MB queued itself, so
  // anything beyond the socket buffers would have to pile up in the proxy
  let sent = 0
  const pump = (async () => {
    const socket = (upstreamSide as WithSocket)._socket
    while (sent < TOTAL && upstreamSide.readyState === upstreamSide.OPEN) {
      if (upstreamSide.bufferedAmount > MB) await once(socket, 'drain')
      const chunk = Buffer.allocUnsafe(CHUNK)
      chunk.fill(sent % 251)
      chunk.writeUInt32BE(sent / CHUNK, 0)
      upstreamSide.send(chunk)
      sent += CHUNK
    }
  })()

  const baseline = await rss()
  let peak = baseline
  // until the sender has stalled (no progress for a second) or sent everything
  let lastSent = -1
  let still = 0
  for (let i = 0; i < 600; i++) {
    if (sent >= TOTAL || still >= 10) break
    await new Promise(resolve => setTimeout(resolve, 100))
    peak = Math.max(peak, await rss())
    still = sent === lastSent ? still + 1 : 0
    lastSent = sent
  }
  const growth = peak - baseline
  t.equal(received, 0, 'the paused client read nothing')
  t.ok(sent < TOTAL, `the upstream was held back after ${(sent / MB).toFixed(1)} MB of ${TOTAL / MB} MB`)
  t.ok(growth < 100 * MB, `the proxy grew by ${(growth / MB).toFixed(1)} MB while holding the paused stream`)

  client.resume()
  await waitFor(() => received === TOTAL, 120_000, 'the whole stream to arrive after resuming')
  await pump
  t.equal(received, TOTAL, 'every byte arrived once the client read again')
  t.ok(inOrder, 'every message whole and in order')
})
