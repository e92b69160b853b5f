// Pipelined requests over TLS, more than a connection may have waiting: the connection is read
// again as they are answered, and every one gets its answer, in order. (A TLS socket hands its
// parser what it has already decrypted even when it is paused.)
import t from 'tap'
import { connect } from 'node:tls'
import { once } from 'node:events'
import { startProxy, startUpstream } from './helper.js'
import { waitFor } from './helpers/wait.js'

const PIPELINED = 300

t.test('300 pipelined requests over TLS are all answered, in order', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.end(`seq ${new URL(req.url ?? '', 'http://x').searchParams.get('seq') ?? ''}`) })
  const proxy = await startProxy(t, upstream.url, { TLS_SELF_SIGNED: 'true' })
  const socket = connect({ host: '127.0.0.1', port: proxy.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  t.teardown(() => socket.destroy())
  await once(socket, 'secureConnect')
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk })
  const requests = Array.from({ length: PIPELINED }, (_, i) => `GET /api/assets?seq=${i} HTTP/1.1\r\nHost: immich.test\r\n\r\n`)
  socket.write(requests.join('') + 'GET /api/assets?seq=last HTTP/1.1\r\nHost: immich.test\r\nConnection: close\r\n\r\n')
  await waitFor(() => socket.readableEnded, 20_000, 'every answer and the end of the connection')

  const statuses = received.match(/^HTTP\/1\.1 \d+/gm) ?? []
  t.same([...new Set(statuses)], ['HTTP/1.1 200'], 'every answer is a 200')
  const bodies = received.split(/HTTP\/1\.1 \d+ [^\r]*\r\n[\s\S]*?\r\n\r\n/).filter(body => body !== '')
  const expected = [...Array.from({ length: PIPELINED }, (_, i) => `seq ${i}`), 'seq last']
  t.equal(bodies.length, expected.length, 'an answer to every request')
  t.ok(bodies.every((body, i) => body === expected[i]), 'in the order they were sent')
})
