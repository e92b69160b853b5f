// SHUTDOWN_TIMEOUT bounds the drain: an upload that would outlast it is cut and the process
// exits anyway, with code 1 (close-with-grace's code for a drain that timed out) and a log line
// saying why.
import t from 'tap'
import { logged, pacedUpload, spawnServer } from './helpers/ops.js'
import { waitFor, within } from './helpers/wait.js'
import { startUpstream } from './helper.js'

t.test('SHUTDOWN_TIMEOUT=1s with a 10 s upload in flight: exit 1 at the timeout, long before the upload would end', async t => {
  let received = 0
  const upstream = await startUpstream(t, (req, res) => {
    req.on('data', (chunk: Buffer) => { received += chunk.length })
    req.on('end', () => res.end('{}'))
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, SHUTDOWN_TIMEOUT: '1s' })
  // 2 MB in 50 pieces 200 ms apart: about 10 s
  const upload = pacedUpload(proxy.port, '/api/assets', 2_000_000, 50, 200)
  await waitFor(() => received > 0, 5000, 'the upload to reach Immich')
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')

  const exit = await within(proxy.exited, 10_000, 'the exit')
  const after = Date.now() - signalled
  t.same(exit, { code: 1, signal: null }, 'exit code 1: the drain did not finish in time')
  // not a timing: a busy machine may take seconds to exit; the upload would end after ~10 s
  t.ok(after >= 900 && after < 8000, `exited ${after} ms after SIGTERM, before the upload could have ended`)
  t.comment(`exited ${after} ms after SIGTERM with SHUTDOWN_TIMEOUT=1s`)
  t.match(logged(proxy.lines, 'closing: SHUTDOWN_TIMEOUT reached with requests still in flight; exiting'), [{ level: 50, shutdownTimeoutMs: 1000 }])
  t.equal(logged(proxy.lines, 'closed').length, 0, 'the drain never finished')

  const result = await within(upload.done, 5000, 'the upload to end')
  t.equal(result.status, undefined, 'the upload got no answer')
  t.match(result.error, { code: /^(ECONNRESET|EPIPE)$/ }, `the upload was cut (${String(result.error?.message)})`)
  t.ok(upload.sent() < 2_000_000, `after ${upload.sent()} bytes`)
})
