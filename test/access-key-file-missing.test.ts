// A key file that cannot be read at start stops the real entry point: starting without the
// guard, or with only some of the keys, would open the door the operator meant to lock.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closedPort } from './helpers/websocket.js'
import { runServer } from './helpers/ops.js'

const serverWith = runServer

t.test('ACCESS_KEY_FILE naming a missing file: exit 1 and one line naming the variable', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const missing = join(dir, 'no-such-secret')
  const port = String(await closedPort())
  const exit = await serverWith({ ACCESS_KEY_FILE: missing, ACCESS_KEY: 'also-set', HOST: '127.0.0.1', PORT: port, UPSTREAM_URL: 'http://127.0.0.1:9' })
  t.equal(exit.code, 1)
  t.equal(exit.stderr, `immich-proxy: ACCESS_KEY_FILE=${JSON.stringify(missing)} cannot be read (ENOENT), e.g. ACCESS_KEY_FILE=/run/secrets/immich_access_keys\n`)
  t.notMatch(exit.stdout, /listening/i, 'it never listened')
  t.notMatch(exit.stdout + exit.stderr, /also-set/, 'the other keys are not shown')

  // a directory where the file should be (a Docker secret mounted at the wrong level)
  const asDirectory = await serverWith({ ACCESS_KEY_FILE: dir, HOST: '127.0.0.1', PORT: port, UPSTREAM_URL: 'http://127.0.0.1:9' })
  t.equal(asDirectory.code, 1)
  t.equal(asDirectory.stderr, `immich-proxy: ACCESS_KEY_FILE=${JSON.stringify(dir)} cannot be read (EISDIR), e.g. ACCESS_KEY_FILE=/run/secrets/immich_access_keys\n`)
})
