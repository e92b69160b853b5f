// The container's command, exactly as the Dockerfile gives it (no Docker engine runs here):
// the final stage's ENTRYPOINT, CMD and HEALTHCHECK run from the repository root (the image's
// WORKDIR holds the same dist/, node_modules/ and deploy/) with the image's ENV and a literal
// environment. It proxies as an unprivileged user, passes its own health check, and stops
// cleanly on SIGTERM, as PID 1 must.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { request } from 'undici'
import { EnvSchema } from '../src/config.js'
import { parseDuration } from '../src/nginx-units.js'
import { startUpstream } from './helper.js'
import { ensureBuilt, root, runServer, spawnServer } from './helpers/ops.js'
import { within } from './helpers/wait.js'

interface Instruction { keyword: string, args: string }

/** The instructions of the Dockerfile's last stage, continuation lines joined, comments dropped. */
function finalStage (dockerfile: string): Instruction[] {
  const logical = dockerfile.replace(/\\\n/g, ' ').split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
    .map(line => {
      const space = line.indexOf(' ')
      return { keyword: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() }
    })
  const from = logical.map(instruction => instruction.keyword).lastIndexOf('FROM')
  return logical.slice(from)
}

/** The exec form of CMD (a JSON array): the only form in which node itself is PID 1. */
function execForm (args: string): string[] {
  const command = JSON.parse(args) as unknown
  if (!Array.isArray(command) || !command.every(part => typeof part === 'string')) throw new Error(`not an exec-form command: ${args}`)
  return command
}

const stage = finalStage(readFileSync(join(root, 'Dockerfile'), 'utf8'))
const only = (keyword: string): Instruction[] => stage.filter(instruction => instruction.keyword === keyword)

/** A path in the image, where the repository root stands for its WORKDIR. */
function inRepository (path: string): string {
  const workdir = only('WORKDIR').at(-1)?.args ?? '/'
  return path.startsWith('/') ? join(root, relative(workdir, path)) : path
}

t.test('the image starts its entrypoint as root, which runs the proxy as node, on ports above 1024', async t => {
  // root only until the entrypoint has handed over certificate files node cannot read
  t.same(only('USER').map(instruction => instruction.args), [], 'no USER: the entrypoint starts as root')
  const entrypoint = only('ENTRYPOINT').map(instruction => execForm(instruction.args))
  t.same(entrypoint, [['/app/deploy/docker-entrypoint.sh']], 'the entrypoint script, exec form')
  t.match(readFileSync(inRepository(entrypoint[0][0]), 'utf8'), /^user=\$\{IMMICH_PROXY_USER:-node\}$/m, 'whose user is node')
  const ports = only('EXPOSE').flatMap(instruction => instruction.args.split(/\s+/)).map(port => Number(port.replace(/\/tcp$/, '')))
  t.ok(ports.length > 0, `exposes ${ports.join(', ')}`)
  for (const port of ports) t.ok(port > 1024 && port <= 65535, `${port} needs no privilege`)
})

/** A Go duration as compose writes it (`35s`, `1m30s`, `2m`), in ms. */
function goDuration (text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
  if (parts.map(part => part[0]).join('') !== text) throw new Error(`not a duration: ${text}`)
  return parts.reduce((sum, part) => sum + Number(part[1]) * units[part[2]], 0)
}

t.test('docker stop gives the drain its SHUTDOWN_TIMEOUT before it kills', async t => {
  // Docker sends SIGKILL 10 s after SIGTERM unless the service says otherwise
  const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8')
  const service = /^ {2}immich-proxy:\n((?: {4}.*\n|\s*\n)*)/m.exec(compose)?.[1] ?? ''
  t.ok(service.includes('image: immich-proxy'), 'the immich-proxy service')
  const grace = /^ {4}stop_grace_period: *['"]?([0-9.a-z]+)['"]?$/m.exec(service)?.[1]
  const graceMs = grace === undefined ? 10_000 : goDuration(grace)
  const drainMs = parseDuration(EnvSchema.properties.SHUTDOWN_TIMEOUT.default as string)
  t.ok(graceMs > drainMs, `stop_grace_period ${grace ?? '10s (Docker\'s default)'} is longer than SHUTDOWN_TIMEOUT's default ${String(EnvSchema.properties.SHUTDOWN_TIMEOUT.default)}`)
})

t.test('ENTRYPOINT and CMD proxy as an unprivileged user, HEALTHCHECK passes, SIGTERM exits 0', async t => {
  const cmds = only('CMD')
  t.equal(cmds.length, 1, 'one CMD in the final stage')
  const entrypoints = only('ENTRYPOINT')
  t.equal(entrypoints.length, 1, 'one ENTRYPOINT in the final stage')
  // `nobody` stands in for the image's node user
  const command = [...execForm(entrypoints[0].args).map(inRepository), ...execForm(cmds[0].args)]
  const healthcheck = only('HEALTHCHECK')
  t.equal(healthcheck.length, 1, 'one HEALTHCHECK')
  const checkArgs = /\bCMD\s+(\[.*\])$/.exec(healthcheck[0].args)?.[1]
  t.ok(checkArgs, `HEALTHCHECK has an exec-form CMD: ${healthcheck[0].args}`)
  const check = execForm(checkArgs as string)
  t.equal(only('WORKDIR').at(-1)?.args, '/app', 'the command runs where dist/ and node_modules/ are (here: the repository root)')
  // ENV NODE_ENV=production and the like, as the image sets them
  const imageEnv = Object.fromEntries(only('ENV').flatMap(instruction => instruction.args.split(/\s+/).map(pair => pair.split('=') as [string, string])))
  t.equal(imageEnv.NODE_ENV, 'production')

  await ensureBuilt()

  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(req.url === '/api/server/ping' ? '{"res":"pong"}' : JSON.stringify({ url: req.url, forwardedFor: req.headers['x-forwarded-for'] }))
  })
  const env = { ...imageEnv, UPSTREAM_URL: upstream.url }
  // in the image's WORKDIR, the repository root here: CMD names the bundle by a relative path
  const proxy = await spawnServer(t, { ...env, IMMICH_PROXY_USER: 'nobody' }, { command, cwd: root })
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${String(proxy.child.pid)}/status`, 'utf8'))?.[1]
  t.not(uid, '0', `the proxy runs as uid ${String(uid)}, not root`)
  const fullEnv = { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: String(proxy.port), ADMIN_PORT: String(proxy.adminPort) }

  const response = await request(proxy.url + '/api/albums?shared=true')
  t.equal(response.statusCode, 200)
  t.same(await response.body.json(), { url: '/api/albums?shared=true', forwardedFor: '127.0.0.1' }, 'proxied to Immich with forwarded headers')

  const health = await runServer(fullEnv, { command: check, cwd: root })
  t.same({ code: health.code, output: health.stdout + health.stderr }, { code: 0, output: '' }, `${check.join(' ')} exits 0`)

  const signalled = Date.now()
  proxy.child.kill('SIGTERM')
  t.same(await within(proxy.exited, 10_000, 'the exit after SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit code 0')
  t.comment(`exited ${Date.now() - signalled} ms after SIGTERM`)
  t.notOk(/Error|warn/i.test(proxy.output().split('\n').filter(line => !line.includes('"level":30')).join('\n')), 'nothing but info lines on the way')
})
