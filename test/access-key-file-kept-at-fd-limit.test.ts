// The access-key file is re-read every 2 s. When the process is out of file descriptors the
// read fails with EMFILE, which says nothing about the file: its keys stay in service (and the
// log says why), rather than being revoked until the next read succeeds.
import t from 'tap'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { spawnServer } from './helpers/ops.js'
import { waitFor } from './helpers/wait.js'

t.test('a key file unreadable for want of descriptors keeps its keys', async t => {
  const dir = t.testdir()
  const keyFile = join(dir, 'keys')
  writeFileSync(keyFile, 'file-key\n')
  const upstream = await startUpstream(t, (req, res) => { res.end('ok') })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, ACCESS_KEY_FILE: keyFile, MAX_CONNECTIONS: '0' },
    { wrap: command => ['sh', '-c', 'ulimit -n 128 && exec "$0" "$@"', ...command] })
  const ok = await request(proxy.url + '/api/server/ping', { headers: { 'x-access-key': 'file-key' } })
  t.equal(ok.statusCode, 200, 'the file key is accepted')
  await ok.body.dump()

  // every descriptor taken for longer than one re-read of the file
  const sockets: Socket[] = []
  for (let i = 0; i < 200; i++) sockets.push(connect(proxy.port, '127.0.0.1').on('error', () => {}))
  const kept = 'access key file unreadable for now (no file descriptor free); its keys stay in service'
  const revoked = 'access key file unreadable; its keys are revoked'
  await waitFor(() => proxy.lines.some(line => line.msg === kept || line.msg === revoked), 10_000, 'a re-read of the key file at the fd limit')
  for (const socket of sockets) socket.destroy()
  // the proxy sees the flood's sockets close a moment after this side does; a request it cannot
  // yet accept is tried again, a refusal (403) is not
  await waitFor(() => proxy.child.exitCode !== null || readdirSync(`/proc/${proxy.child.pid ?? 0}/fd`).length < 100, 5000, 'the flood\'s sockets to close')

  const messages = proxy.lines.map(line => line.msg)
  t.notOk(messages.includes('access key file unreadable; its keys are revoked'), 'the keys were not revoked')
  t.ok(messages.includes('access key file unreadable for now (no file descriptor free); its keys stay in service'), 'the log says why the read failed')
  const after = await request(proxy.url + '/api/server/ping', { headers: { 'x-access-key': 'file-key' } })
  t.equal(after.statusCode, 200, 'the file key is accepted right after')
  await after.body.dump()
})
