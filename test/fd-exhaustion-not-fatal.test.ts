// With no connection cap (MAX_CONNECTIONS=0) idle connections can take every file descriptor.
// The process must live through it: the load-shedding sampler's RSS read (which opens
// /proc/self/stat) fails with EMFILE and is logged, libuv closes what it cannot accept, and
// once the connections go, requests are answered again.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { serverCommand, spawnServer } from './helpers/ops.js'

t.test('out of descriptors, the process keeps running and answers afterwards', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.end('ok') })
  const [node, ...args] = await serverCommand()
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, MAX_CONNECTIONS: '0', LOAD_SHED_MEMORY: '4g' },
    ['sh', '-c', 'ulimit -n 128 && exec "$0" "$@"', node, ...args])

  const sockets: Socket[] = []
  for (let i = 0; i < 250; i++) sockets.push(connect(proxy.port, '127.0.0.1').on('error', () => {}))
  // two turns of the one-second sampler at the limit
  await new Promise(resolve => setTimeout(resolve, 2500))
  for (const socket of sockets) socket.destroy()
  await new Promise(resolve => setTimeout(resolve, 200))

  t.equal(proxy.child.exitCode, null, 'the process is still running')
  t.ok(proxy.lines.some(line => line.msg === 'cannot read the process RSS; load shedding keeps the last reading'), 'the failed RSS read is logged')
  t.notOk(proxy.lines.some(line => line.msg === 'closing after an error'), 'no shutdown began')
  const response = await request(proxy.url + '/api/server/ping')
  t.equal(response.statusCode, 200, 'a normal request is answered after the flood')
  await response.body.dump()
})
