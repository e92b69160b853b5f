// The real entry point with a bad environment: what an operator sees in `docker logs`.
import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

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

t.test('a bad BODY_LIMIT stops the process with exit code 1 and one line', async t => {
  const exit = await serverWith({ BODY_LIMIT: '12q' })
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '', 'nothing was started or logged')
  t.equal(exit.stderr, 'immich-proxy: BODY_LIMIT="12q" is not a size in nginx syntax (bytes, or a number with k, m or g; 0 = no limit), e.g. BODY_LIMIT=50000M\n')
})

t.test('an UPSTREAM_URL with a path stops the process the same way', async t => {
  const exit = await serverWith({ UPSTREAM_URL: 'http://immich-server:2283/photos', PORT: '8080' })
  t.equal(exit.code, 1)
  t.equal(exit.stdout, '')
  t.equal(exit.stderr, 'immich-proxy: UPSTREAM_URL="http://immich-server:2283/photos" has a path, query or fragment; Immich is served on the root path only, e.g. UPSTREAM_URL=http://immich-server:2283\n')
})
