// A key file that cannot be read at start stops the real entry point: starting without the
// guard, or with only some of the keys, would open the door the operator meant to lock.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { closedPort } from './helpers/websocket.js'

const root = fileURLToPath(new URL('..', import.meta.url))

interface Exit { code: number | null, stdout: string, stderr: string }

/** Runs src/server.ts with exactly `env` (plus PATH to find node), never the ambient environment. */
async function serverWith (env: Record<string, string>): Promise<Exit> {
  return await new Promise(resolve => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...env },
      timeout: 30_000
    }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : child.exitCode, stdout, stderr }))
  })
}

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
