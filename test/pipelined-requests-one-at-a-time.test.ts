// Pipelined HTTP/1.1 requests are forwarded one at a time per client connection: one connection
// to Immich however many are pipelined, answers in order, and a request whose body is still
// unread while it waits its turn (an upload behind a slow request) is neither stuck nor cut.
import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { startProxy, startUpstream } from './helper.js'
import { waitFor } from './helpers/wait.js'

const UPLOAD = Buffer.alloc(1024 * 1024, 'u')

t.test('pipelined requests reach Immich one at a time, bodies whole, answers in order', async t => {
  let connections = 0
  let inFlight = 0
  let mostInFlight = 0
  const upstream = await startUpstream(t, (req, res) => {
    inFlight++
    mostInFlight = Math.max(mostInFlight, inFlight)
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => {
      setTimeout(() => {
        inFlight--
        res.end(`${req.method} ${req.url} ${bytes}`)
      }, req.url === '/slow' ? 300 : 10)
    })
  })
  upstream.server.on('connection', () => { connections++ })
  const proxy = await startProxy(t, upstream.url)

  const socket = connect(proxy.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(
    'GET /slow HTTP/1.1\r\nHost: immich.test\r\n\r\n' +
    `POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${UPLOAD.length}\r\n\r\n`
  )
  socket.write(UPLOAD)
  socket.write('GET /api/server/ping HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk })
  await waitFor(() => socket.readableEnded || received.includes('GET /api/server/ping'), 10_000, 'the three answers')
  socket.destroy()

  const bodies = received.split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).filter(body => body !== '')
  t.same(bodies, ['GET /slow 0', `POST /api/assets ${UPLOAD.length}`, 'GET /api/server/ping 0'], 'answers in order, the upload whole')
  t.equal(mostInFlight, 1, 'one request at a time at Immich')
  t.equal(connections, 1, `over one connection to Immich (${connections})`)
})
