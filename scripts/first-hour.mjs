// CI (.ci/run): a new user's first hour, replayed on a fresh clone in a temporary folder with the
// README's own commands. What it checks, each a trap a user once fell into:
// - `npm ci` installs without an engine warning on this Node;
// - what `npm test` needs beyond npm it brings itself: no test names a system browser, and the
//   pretest says which program is missing instead of the suite failing test by test (the full
//   `npm test` is .ci/run's own step, on a machine where .ci/run installed nothing for it);
// - `npm start` reads `.env` (an ACCESS_KEY there guards the proxy), warns about a misspelled
//   setting naming the intended one, and does not rebuild on a second start;
// - the compose file renders with Immich's healthcheck and no TLS_* of its own, and .gitignore /
//   .dockerignore cover what the deploy steps create (scripts/check-compose.mjs, run in the clone);
// - the HTTP_PORT listener answers a POST with 308 at once, without 100 Continue, never reading it.
// Bounded: every wait has a deadline; started processes are killed on the way out.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { connect, createServer as createTcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('..', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'immich-proxy-first-hour-'))
const clone = join(work, 'immich-proxy')
const children = new Set()
const problems = []
const check = (ok, what, detail = '') => {
  console.log(`${ok ? 'ok' : 'NOT OK'}: ${what}${detail === '' ? '' : ` (${detail})`}`)
  if (!ok) problems.push(what)
}

function cleanUp () {
  for (const child of children) {
    try { process.kill(-child.pid, 'SIGKILL') } catch {}
  }
  rmSync(work, { recursive: true, force: true })
}
process.on('exit', cleanUp)
const deadline = setTimeout(() => {
  console.error('first-hour: not done within 10 minutes')
  process.exit(1)
}, 600_000)
deadline.unref()

async function freePort () {
  const server = createTcpServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  return port
}

/** `npm start` in the clone with this environment; resolves once the start-up summary is logged. */
async function npmStart (env) {
  const child = spawn('npm', ['start'], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const started = await new Promise(resolve => {
    const timer = setTimeout(() => resolve(false), 120_000)
    const look = () => {
      if (output.includes('immich-proxy started: ')) {
        clearTimeout(timer)
        resolve(true)
      }
    }
    child.stdout.on('data', look)
    child.on('exit', () => { clearTimeout(timer); resolve(false) })
  })
  return {
    started,
    output: () => output,
    async stop () {
      if (child.exitCode !== null) return
      process.kill(-child.pid, 'SIGTERM')
      await Promise.race([once(child, 'exit'), new Promise(resolve => setTimeout(resolve, 20_000))])
      children.delete(child)
    }
  }
}

async function get (port, path, headers = {}) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: AbortSignal.timeout(10_000) })
  return { status: response.status, body: await response.text() }
}

/** Raw bytes to a port; what came back within `ms` (or until the peer closed). */
async function rawExchange (port, text, ms) {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(text)
  let received = ''
  socket.on('data', chunk => { received += chunk })
  socket.on('error', () => {})
  await Promise.race([once(socket, 'close'), new Promise(resolve => setTimeout(resolve, ms))])
  socket.destroy()
  return received
}

// --- a fresh clone, as the README starts
execFileSync('git', ['clone', '-q', repo, clone])
const install = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: clone, encoding: 'utf8' })
check(install.status === 0, 'npm ci succeeds on a fresh clone')
check(!/EBADENGINE/.test(install.stdout + install.stderr), `npm ci warns of no engine mismatch on Node ${process.versions.node}`)

// --- npm test needs nothing beyond npm
const testFiles = []
const walk = dir => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) walk(join(dir, entry.name))
    else if (entry.name.endsWith('.ts')) testFiles.push(join(dir, entry.name))
  }
}
walk(join(clone, 'test'))
const systemBrowser = testFiles.filter(file => /\/usr\/(bin|lib)\/chrom/.test(readFileSync(file, 'utf8')))
check(systemBrowser.length === 0, 'no test uses a system browser', systemBrowser.join(', '))
const pkg = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8'))
check(pkg.scripts.pretest === 'node scripts/test-prerequisites.mjs', 'npm test checks its prerequisites first')
check(readdirSync(join(clone, 'node_modules/@sparticuz/chromium/bin')).some(name => name.startsWith('chromium')), 'npm ci brought the Chromium the browser tests drive')
// with only node and sh on the PATH and no root, the pretest names curl and stops
const bare = join(work, 'bare-path')
mkdirSync(bare)
symlinkSync(process.execPath, join(bare, 'node'))
symlinkSync('/bin/sh', join(bare, 'sh'))
const pretestCommand = [join(bare, 'node'), 'scripts/test-prerequisites.mjs']
// as root it would install curl: run it as nobody, as a developer without root would
if (process.getuid?.() === 0) {
  chmodSync(work, 0o755)
  pretestCommand.unshift('/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups')
}
const pretest = spawnSync(pretestCommand[0], pretestCommand.slice(1), { cwd: clone, encoding: 'utf8', env: { PATH: bare } })
check(pretest.status === 1 && /npm test needs curl/.test(pretest.stderr), 'without curl and root, npm test stops at once naming curl', pretest.stderr.trim())

// --- npm start reads .env, warns of a typo, builds once
const immich = createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : JSON.stringify({ immich: true, url: req.url }))
})
immich.listen(0, '127.0.0.1')
await once(immich, 'listening')
const upstreamUrl = `http://127.0.0.1:${immich.address().port}`
const port = await freePort()
const adminPort = await freePort()
writeFileSync(join(clone, '.env'), `UPSTREAM_URL=${upstreamUrl}\nACCESS_KEY=first-hour-key\n`)
const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME ?? work, HOST: '127.0.0.1', PORT: String(port), ADMIN_PORT: String(adminPort) }
const first = await npmStart({ ...baseEnv, ACCES_KEY: 'typo' })
check(first.started, 'npm start builds and starts on a fresh clone', first.started ? '' : first.output().slice(-2000))
if (first.started) {
  const stranger = await get(port, '/api/albums')
  check(stranger.status === 403, '.env is read: its ACCESS_KEY refuses a request without the key', `status ${stranger.status}`)
  const member = await get(port, '/api/albums', { 'x-access-key': 'first-hour-key' })
  check(member.status === 200 && JSON.parse(member.body).immich === true, 'the key from .env lets a request through to Immich', `status ${member.status}`)
  check(/ACCES_KEY[^\n]*did you mean ACCESS_KEY/.test(first.output()), 'a misspelled setting (ACCES_KEY) is warned about, naming ACCESS_KEY')
  check(!first.output().includes('typo') && !first.output().includes('first-hour-key'), 'no key value in the log')
}
await first.stop()
const bundle = join(clone, 'dist/immich-proxy.cjs')
const built = statSync(bundle).mtimeMs
const second = await npmStart(baseEnv)
check(second.started && statSync(bundle).mtimeMs === built, 'a second npm start does not rebuild')
await second.stop()

// --- the deploy files
const compose = spawnSync('node', ['scripts/check-compose.mjs'], { cwd: clone, encoding: 'utf8' })
check(compose.status === 0, 'the compose file renders with Immich\'s healthcheck and no TLS_* of its own; ignore files cover the deploy files',
  (compose.stdout + compose.stderr).trim().split('\n').filter(line => !line.startsWith('ok:')).join('; '))

// --- the redirect listener never reads a body
rmSync(join(clone, '.env'))
const httpPort = await freePort()
const tls = await npmStart({ ...baseEnv, UPSTREAM_URL: upstreamUrl, TLS_SELF_SIGNED: 'true', HTTP_PORT: String(httpPort) })
check(tls.started, 'npm start with TLS_SELF_SIGNED and HTTP_PORT starts')
if (tls.started) {
  const answer = await rawExchange(httpPort,
    'POST /api/assets HTTP/1.1\r\nHost: photos.example\r\nContent-Type: multipart/form-data; boundary=x\r\n' +
    'Content-Length: 10485760\r\nExpect: 100-continue\r\n\r\n', 5000)
  check(answer.startsWith('HTTP/1.1 308'), 'a POST to HTTP_PORT gets 308 at once, its 10 MB body never sent', answer.split('\r\n')[0])
  check(!answer.includes('100 Continue'), 'and no 100 Continue')
  check(/\r\nlocation: https:\/\/photos\.example\/api\/assets\r\n/i.test(answer), 'to the same path on HTTPS')
}
await tls.stop()
immich.close()

clearTimeout(deadline)
if (problems.length > 0) {
  console.error(`first-hour: ${problems.length} problem(s):\n- ${problems.join('\n- ')}`)
  process.exit(1)
}
console.log('first-hour: all checks passed')
