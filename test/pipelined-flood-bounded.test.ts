// Pipelined requests behind a slow one wait their turn without the proxy reading all of them
// ahead: the connection is read only as far as a short queue, so thousands of requests on one
// connection cost little memory, and every one of them is still answered, in order. What the
// proxy has not read stays in the kernel's socket buffers, where /proc/net/tcp shows it.
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { startUpstream } from './helper.js'
import { spawnServer } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

const PIPELINED = 5000

/** Resident memory of a process, from /proc, in bytes. */
function rss (pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (line === null) throw new Error(`no VmRSS for ${pid}`)
  return Number(line[1]) * 1024
}

/** Bytes queued in the kernel on the IPv4 loopback sockets whose local port is `port`: received and not yet read, or written and not yet acknowledged. */
function queuedBytes (port: number): { received: number, unsent: number } {
  let received = 0
  let unsent = 0
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 5 || Number.parseInt(fields[1].split(':')[1], 16) !== port) continue
    const [tx, rx] = fields[4].split(':').map(hex => Number.parseInt(hex, 16))
    received += rx
    unsent += tx
  }
  return { received, unsent }
}

t.test('5000 pipelined requests behind a slow one: read no further than one read ahead, all answered in order', async t => {
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
  await waitFor(() => received.includes('seq 49'), 30_000, 'the warm-up answers')
  received = ''
  const before = rss(pid)

  let flood = 'GET /slow HTTP/1.1\r\nHost: immich.test\r\n\r\n'
  for (let i = 0; i < PIPELINED; i++) flood += `GET /api/assets?seq=${i} HTTP/1.1\r\nHost: immich.test\r\n\r\n`
  flood += 'GET /api/assets?seq=last HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n'
  socket.write(flood)
  await waitFor(() => releaseSlow !== undefined, 30_000, 'the slow request at Immich')
  // time for the proxy to read what it will of the rest while the slow answer holds them back
  await new Promise(resolve => setTimeout(resolve, 1000))
  const grown = rss(pid) - before
  // not read by the proxy: in its receive queue, in the client's send queue, or not yet handed
  // to the kernel by the client
  const unread = queuedBytes(proxy.port).received + queuedBytes(socket.localPort as number).unsent + socket.writableLength
  releaseSlow?.()
  await waitFor(() => socket.readableEnded, 90_000, 'every answer and the end of the connection')

  const bodies = received.split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).filter(body => body !== '')
  const expected = ['slow', ...Array.from({ length: PIPELINED }, (_, i) => `seq ${i}`), 'seq last']
  t.equal(bodies.length, expected.length, 'an answer to every request')
  t.ok(bodies.every((body, i) => body === expected[i]), 'in the order they were sent')
  t.ok(connections <= 2, `over at most two connections to Immich (${connections})`)
  // the queue (32) and the read in progress (at most 64 KiB) are all the proxy holds
  const read = Buffer.byteLength(flood) - unread
  t.ok(read <= 64 * 1024 + 32 * 80, `the proxy read ${read} of the ${Buffer.byteLength(flood)} bytes while the slow answer held the rest back`)
  // resident memory follows V8's young generation more than the queue (Node 26 grew 30 MiB
  // here with the same 64 KiB read), so it is reported, not asserted
  t.comment(`resident memory grew ${(grown / 1024 / 1024).toFixed(1)} MiB meanwhile`)
})
