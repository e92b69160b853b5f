// Pipelined requests behind a slow one wait their turn without the proxy reading all of them
// ahead: the connection is read only as far as a short queue, so thousands of requests on one
// connection cost little memory, and every one of them is still answered, in order.
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { startUpstream } from './helper.js'
import { spawnServer } from './helpers/ops.js'
import { waitFor } from './helpers/websocket.js'

const PIPELINED = 5000

/** Resident memory of a process, from /proc, in bytes. */
function rss (pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (line === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(line[1]) * 1024
}

t.test('5000 pipelined requests behind a slow one: bounded memory, all answered in order', async t => {
  let connections = 0
  let releaseSlow: (() => void) | undefined
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/slow') releaseSlow = () => res.end('slow')
    else res.end(`seq ${new URL(req.url ?? '', 'http://x').searchParams.get('seq') ?? ''}`)
  })
  upstream.server.on('connection', () => { connections++ })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  const pid = proxy.child.pid as number

  const socket = connect(proxy.port, '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk })
  // warms the proxy up on this connection, so the figure below is what the queue costs
  for (let i = 0; i < 50; i++) socket.write(`GET /api/warm?seq=${i} HTTP/1.1\r\nHost: immich.test\r\n\r\n`)
  await waitFor(() => received.includes('seq 49'), 5000, 'the warm-up answers')
  received = ''
  const before = rss(pid)

  let flood = 'GET /slow HTTP/1.1\r\nHost: immich.test\r\n\r\n'
  for (let i = 0; i < PIPELINED; i++) flood += `GET /api/assets?seq=${i} HTTP/1.1\r\nHost: immich.test\r\n\r\n`
  flood += 'GET /api/assets?seq=last HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n'
  socket.write(flood)
  await waitFor(() => releaseSlow !== undefined, 5000, 'the slow request at Immich')
  // time for the proxy to read what it will of the rest while the slow answer holds them back
  await new Promise(resolve => setTimeout(resolve, 1000))
  const grown = rss(pid) - before
  releaseSlow?.()
  await waitFor(() => socket.readableEnded, 8000, 'every answer and the end of the connection')

  const bodies = received.split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).filter(body => body !== '')
  const expected = ['slow', ...Array.from({ length: PIPELINED }, (_, i) => `seq ${i}`), 'seq last']
  t.equal(bodies.length, expected.length, 'an answer to every request')
  t.ok(bodies.every((body, i) => body === expected[i]), 'in the order they were sent')
  t.ok(connections <= 2, `over at most two connections to Immich (${connections})`)
  t.ok(grown < 20 * 1024 * 1024, `the waiting requests cost ${(grown / 1024 / 1024).toFixed(1)} MiB`)
})
