// With no connection cap (MAX_CONNECTIONS=0) idle connections can take every file descriptor.
// The process must live through it: the load-shedding sampler's RSS read (which opens
// /proc/self/stat) fails with EMFILE and is logged, libuv closes what it cannot accept, and
// once the connections go, requests are answered again.
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { startUpstream } from './helper.js'
import { statusWith } from './helpers/access-key.js'
import { spawnServer } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

t.test('out of descriptors, the process keeps running and answers afterwards', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.end('ok') })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, MAX_CONNECTIONS: '0', LOAD_SHED_MEMORY: '4g' },
    { wrap: command => ['sh', '-c', 'ulimit -n 128 && exec "$0" "$@"', ...command] })

  const sockets: Socket[] = []
  for (let i = 0; i < 250; i++) sockets.push(connect(proxy.port, '127.0.0.1').on('error', () => {}))
  // the one-second sampler reads the RSS at the limit, then one turn more
  const failedRead = 'cannot read the process RSS; load shedding keeps the last reading'
  await waitFor(() => proxy.lines.some(line => line.msg === failedRead) || proxy.child.exitCode !== null, 10_000, 'the sampler to meet the fd limit')
  await new Promise(resolve => setTimeout(resolve, 1100))
  for (const socket of sockets) socket.destroy()

  t.equal(proxy.child.exitCode, null, 'the process is still running')
  t.ok(proxy.lines.some(line => line.msg === failedRead), 'the failed RSS read is logged')
  t.notOk(proxy.lines.some(line => line.msg === 'closing after an error'), 'no shutdown began')
  // the proxy sees the flood's sockets close a moment after this side does
  await waitFor(async () => await statusWith(proxy.url + '/api/server/ping').catch(() => 0) === 200, 5000, 'a normal request to be answered after the flood', { intervalMs: 100 })
  t.equal(proxy.child.exitCode, null, 'and the process is still running')
})
