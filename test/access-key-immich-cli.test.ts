// The real @immich/cli through a proxy guarded by ACCESS_KEY, sending no access key (it cannot:
// 3.x has only --url and --key): it finds the API through /.well-known/immich (fetched with no
// credential), logs in with its API key and uploads a file whole. With
// ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS=false the same commands are refused.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProxy, startUpstream } from './helper.js'
import { immichStandIn } from './helpers/immich.js'
import { immichCli, IMMICH_CLI_VERSION } from './helpers/immich-cli.js'

const API_KEY = 'cli-api-key-0123456789'

async function runCli (command: [string, string], args: string[], configDir: string): Promise<{ code: number | null, output: string }> {
  return await new Promise(resolve => {
    const [file, ...rest] = [...command, '--config-directory', configDir, ...args]
    const child = execFile(file, rest,
      { timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: configDir } },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : child.exitCode, output: stdout + stderr }))
  })
}

t.test(`@immich/cli ${IMMICH_CLI_VERSION} logs in and uploads through the guarded proxy with its API key alone`, async t => {
  const cli = await immichCli()
  const immich = immichStandIn({ apiKeys: new Map([[API_KEY, ['all']]]) })
  const upstream = await startUpstream(t, immich.handler)
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'the-access-key' })
  const dir = t.testdir()
  const photo = Buffer.alloc(300_000, 7)
  mkdirSync(join(dir, 'photos'))
  writeFileSync(join(dir, 'photos', 'beach.jpg'), photo)

  const login = await runCli(cli.command, ['login', proxy.url, API_KEY], join(dir, 'config'))
  t.equal(login.code, 0, `immich login exits 0:\n${login.output}`)
  t.match(login.output, /Logged in as cli@example\.org/)
  const upload = await runCli(cli.command, ['upload', '--no-progress', join(dir, 'photos', 'beach.jpg')], join(dir, 'config'))
  t.equal(upload.code, 0, `immich upload exits 0:\n${upload.output}`)
  t.match(upload.output, /Successfully uploaded 1 new asset/)

  t.equal(immich.state.uploads.length, 1, 'Immich got one upload')
  t.ok(immich.state.uploads[0] > photo.length, `the multipart body (${immich.state.uploads[0]} bytes) carries the whole ${photo.length}-byte file`)
  const discovery = immich.state.seen.filter(request => request.url === '/.well-known/immich')
  t.ok(discovery.length >= 1, 'the CLI fetched the discovery document')
  t.ok(discovery.every(request => request.headers['x-api-key'] === undefined), 'with no credential, and was let through')
  t.ok(immich.state.seen.filter(request => request.url.startsWith('/api/') && request.url !== '/api/auth/validateToken').every(request => request.headers['x-api-key'] === API_KEY), 'every API call carried the API key to Immich')
  t.equal(immich.state.validations, 1, 'the gate asked Immich once, and remembered')
  t.comment(`transcript:\n$ immich login ${proxy.url} <key>\n${login.output}$ immich upload photos/beach.jpg\n${upload.output}`)
})

t.test('with ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS=false the CLI is refused', async t => {
  const cli = await immichCli()
  const immich = immichStandIn({ apiKeys: new Map([[API_KEY, ['all']]]) })
  const upstream = await startUpstream(t, immich.handler)
  const proxy = await startProxy(t, upstream.url, { ACCESS_KEY: 'the-access-key', ACCESS_KEY_ALLOW_IMMICH_CREDENTIALS: 'false' })
  const dir = t.testdir()
  const login = await runCli(cli.command, ['login', proxy.url, API_KEY], join(dir, 'config'))
  t.not(login.code, 0, 'immich login fails')
  t.match(login.output, /403/)
  t.notOk(immich.state.seen.some(request => request.url.startsWith('/api/')), 'no API call reached Immich')
})
