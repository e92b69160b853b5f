// ACCESS_KEY_FILE (Docker secrets): one key per line, re-read while the proxy runs, so that a key
// is revoked or added by editing the file, without a restart. The proxy polls the file every 2 s.
// The brake is off here (ACCESS_KEY_MAX_FAILURES=0): waiting for a revocation means sending the
// revoked key until it is refused, and those refusals would count as guesses.
import t from 'tap'
import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { startProxy, startUpstream } from './helper.js'
import { keyFile, statusWith } from './helpers/access-key.js'
import { waitFor } from './helpers/wait.js'

// the file is checked every 2 s; a change must be live well within this
const RELOAD = 10_000

t.test('keys one per line are accepted; comments, blank lines and CRLF are not keys', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, '# keys for the family\r\n\r\nkey-alpha\r\n  key-beta  \n\n# key-gamma\n')
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY_FILE: file.path, ACCESS_KEY_MAX_FAILURES: '0' })

  t.equal(await statusWith(proxy.url + '/api/server/ping', 'key-alpha'), 200)
  t.equal(await statusWith(proxy.url + '/api/server/ping', 'key-beta'), 200, 'surrounding spaces are not part of a key')
  for (const notKey of ['# keys for the family', '# key-gamma', 'key-gamma', '', 'key-alpha key-beta']) {
    t.equal(await statusWith(proxy.url + '/api/server/ping', notKey), 403, `${JSON.stringify(notKey)} is not a key`)
  }
  t.equal(await statusWith(proxy.url + '/api/server/ping'), 403, 'no key, no entry')
  t.equal(upstream.requests.length, 2)
})

t.test('editing the file revokes a removed key and admits an added one, without a restart', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, 'stays\nrevoked-soon\n')
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY_FILE: file.path, ACCESS_KEY_MAX_FAILURES: '0' })
  const url = proxy.url + '/api/assets'
  t.equal(await statusWith(url, 'revoked-soon'), 200)

  file.write('stays\n')
  const since = Date.now()
  await waitFor(async () => await statusWith(url, 'revoked-soon') === 403, RELOAD, 'the revocation', { intervalMs: 100 })
  const revokedAfter = Date.now() - since
  t.comment(`revoked ${revokedAfter} ms after the edit`)
  t.equal(await statusWith(url, 'stays'), 200, 'the remaining key still works')

  file.write('stays\nnew-member\n')
  await waitFor(async () => await statusWith(url, 'new-member') === 200, RELOAD, 'the added key', { intervalMs: 100 })
  t.equal(await statusWith(url, 'revoked-soon'), 403, 'the revoked key stays revoked')

  // how secrets are usually replaced (Kubernetes, `mv` after writing): a new file renamed over
  const replacement = file.path + '.new'
  writeFileSync(replacement, 'swapped-in\n')
  renameSync(replacement, file.path)
  await waitFor(async () => await statusWith(url, 'swapped-in') === 200, RELOAD, 'the key of the swapped file', { intervalMs: 100 })
  t.equal(await statusWith(url, 'stays'), 403, 'a key missing from the swapped file is revoked')
})

t.test('ACCESS_KEY and ACCESS_KEY_FILE together: both sets work, each on its own', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, 'from-file\n')
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'from-env-1,from-env-2', ACCESS_KEY_FILE: file.path, ACCESS_KEY_MAX_FAILURES: '0' })
  const url = proxy.url + '/photos'
  for (const key of ['from-env-1', 'from-env-2', 'from-file']) t.equal(await statusWith(url, key), 200, key)
  t.equal(await statusWith(url, 'from-env-1,from-file'), 403)

  rmSync(file.path)
  await waitFor(async () => await statusWith(url, 'from-file') === 403, RELOAD, 'the deleted file\'s key to be revoked', { intervalMs: 100 })
  t.equal(await statusWith(url, 'from-env-1'), 200, 'a deleted file takes only its own keys away')

  file.write('from-file\n')
  await waitFor(async () => await statusWith(url, 'from-file') === 200, RELOAD, 'the restored file\'s key', { intervalMs: 100 })
})

t.test('a key file emptied of keys refuses everyone rather than opening the door', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, 'only-key\n')
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY_FILE: file.path, ACCESS_KEY_MAX_FAILURES: '0' })
  file.write('# all keys revoked\n')
  await waitFor(async () => await statusWith(proxy.url + '/', 'only-key') === 403, RELOAD, 'the revocation', { intervalMs: 100 })
  const before = upstream.requests.length
  t.equal(await statusWith(proxy.url + '/'), 403, 'no key is not a key either')
  t.equal(await statusWith(proxy.url + '/', ''), 403, 'nor an empty one')
  t.equal(await statusWith(proxy.url + '/', '#'), 403, 'nor the comment mark')
  t.equal(upstream.requests.length, before, 'nothing reached Immich once the file had no key')
})

t.test('a key file with no key at start: a warning, everyone refused, and the first key added opens', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const file = keyFile(t, '# keys go here, one per line\n')
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY_FILE: file.path, ACCESS_KEY_MAX_FAILURES: '0', LOG_LEVEL: 'info' })
  t.match(proxy.log.text, /"level":40,.*"msg":"ACCESS_KEY_FILE holds no key: every request is refused until one is added"/)
  t.equal(await statusWith(proxy.url + '/'), 403)
  t.equal(await statusWith(proxy.url + '/', '# keys go here, one per line'), 403)
  file.write('first-key\n')
  await waitFor(async () => await statusWith(proxy.url + '/', 'first-key') === 200, RELOAD, 'the first key', { intervalMs: 100 })
  t.match(proxy.log.text, /"keys":1,"msg":"access key file reloaded"/)
})
