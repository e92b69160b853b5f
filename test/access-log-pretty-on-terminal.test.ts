// A person running the proxy in a terminal reads pino-pretty lines, not JSON, one line per
// record as in the JSON: the real entry point under `script` (util-linux), which gives it a
// pseudo-terminal for stdout. pino-pretty is a development dependency: where it is not installed
// (the image, `npm ci --omit=dev`) a terminal gets JSON.
import t from 'tap'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { root, serverCommand, spawnServer, type ServerOptions } from './helpers/ops.js'
import { waitFor, within } from './helpers/wait.js'

/**
 * The server under `script`, for a terminal; `exec`: the proxy replaces script's shell, so that
 * it is script's only child. Its lines are not all JSON: the test waits for them itself.
 */
function onTerminal (entry?: string): ServerOptions {
  return {
    wrap: command => ['script', '-qfec', `exec ${(entry === undefined ? command : [...command.slice(0, -1), entry]).join(' ')}`, '/dev/null'],
    stdin: 'pipe',
    until: 'spawned'
  }
}

t.test('on a terminal the log lines are pretty-printed, one line per record', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const { child, output, exited, port } = await spawnServer(t, { UPSTREAM_URL: upstream.url }, onTerminal())

  await waitFor(() => output().includes(`INFO: Server listening at http://127.0.0.1:${port}`), 30_000, 'the proxy to listen', { last: output })
  const response = await request(`http://127.0.0.1:${port}/api/server/ping?key=share-secret`)
  t.equal(response.statusCode, 200)
  await response.body.dump()
  await waitFor(() => output().includes('INFO: request'), 5000, 'the request line', { last: output })

  const proxyPid = Number(readFileSync(`/proc/${child.pid as number}/task/${child.pid as number}/children`, 'utf8').trim())
  process.kill(proxyPid, 'SIGTERM')
  const { code } = await within(exited, 10_000, 'the exit')
  t.equal(code, 0, 'SIGTERM: exit 0')

  const lines = output().split(/\r?\n/).filter(line => line !== '')
  t.notOk(lines.some(line => line.startsWith('{')), 'no JSON line')
  t.ok(lines.every(line => /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] [A-Z]+: /.test(line)), `every line is a record of its own: a time stamp, the level and the message\n${output()}`)
  const requestLines = lines.filter(line => line.includes('INFO: request'))
  t.equal(requestLines.length, 1, 'one line for the request')
  t.match(requestLines[0], /INFO: request GET \/api\/server\/ping\?key=\[REDACTED\] 200 \{"reqId":"req-[0-9a-z]+","bytesIn":\d+,"bytesOut":\d+,"durationMs":[\d.]+,"upstreamMs":[\d.]+,"client":"127\.0\.0\.1"\}$/,
    'method, path (the key masked) and status in the message, the figures after it')
  t.match(output(), /INFO: immich-proxy started: Immich at http:\/\/127\.0\.0\.1:\d+; TLS off/, 'the summary, on one line too')
  t.notMatch(output(), /"?(pid|hostname)"?:/, 'pid and hostname left out')
  t.match(output(), /INFO: closed/)
})

t.test('on a terminal without pino-pretty installed the lines are JSON, and the proxy runs', async t => {
  const command = await serverCommand()
  // the bundle in a folder of its own whose node_modules has everything but pino-pretty
  const install = mkdtempSync(join(tmpdir(), 'immich-proxy-no-pretty-'))
  t.teardown(() => rmSync(install, { recursive: true, force: true }))
  mkdirSync(join(install, 'dist'))
  mkdirSync(join(install, 'node_modules'))
  const bundle = join(install, 'dist', 'immich-proxy.cjs')
  copyFileSync(command[command.length - 1], bundle)
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name !== 'pino-pretty' && name !== '.bin') symlinkSync(join(root, 'node_modules', name), join(install, 'node_modules', name))
  }
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const { child, output, exited, port } = await spawnServer(t, { UPSTREAM_URL: upstream.url }, onTerminal(bundle))

  await waitFor(() => output().includes('"msg":"Server listening at'), 30_000, 'the proxy to listen', { last: output })
  const response = await request(`http://127.0.0.1:${port}/api/server/ping`)
  t.equal(response.statusCode, 200, 'it proxies')
  await response.body.dump()
  await waitFor(() => output().includes('"msg":"request"'), 5000, 'the request line', { last: output })
  const proxyPid = Number(readFileSync(`/proc/${child.pid as number}/task/${child.pid as number}/children`, 'utf8').trim())
  process.kill(proxyPid, 'SIGTERM')
  t.equal((await within(exited, 10_000, 'the exit')).code, 0, 'SIGTERM: exit 0')
  const lines = output().split(/\r?\n/).filter(line => line !== '')
  t.ok(lines.every(line => { try { return typeof JSON.parse(line) === 'object' } catch { return false } }), `every line is JSON\n${output()}`)
})
