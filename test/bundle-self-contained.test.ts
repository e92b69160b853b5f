// The bundle `npm start` runs (scripts/bundle.mjs) carries the proxy's code and its packages in
// one file, all but pino (whose worker transports need its own directory). A start that reads
// fastify, TypeBox or undici from node_modules again has lost what the bundle is for (docs/design.md):
// a require esbuild cannot follow is enough to bring ~290 files back.
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helper.js'
import { root, serverCommand, spawnServer } from './helpers/ops.js'
import { within } from './helpers/wait.js'

/** pino and every package it depends on, transitively, as installed (npm installs them flat). */
function pinoPackages (): Set<string> {
  const found = new Set<string>()
  const visit = (name: string): void => {
    if (found.has(name)) return
    found.add(name)
    const manifest = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
    for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency)
  }
  visit('pino')
  return found
}

/** node_modules/@scope/name/lib/x.js → @scope/name */
function packageOf (file: string): string {
  const parts = relative(join(root, 'node_modules'), file).split(sep)
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
}

t.test('started with its admin listener, the bundle reads only pino and its dependencies from node_modules', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('pong'))
  const command = await serverCommand()
  // a preload that reports, at exit, every CommonJS file the process loaded
  const dir = t.testdir({ 'report-loaded.cjs': "process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(Object.keys(require.cache)) + '\\n'))\n" })
  const entry = command.at(-1) as string
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url },
    { command: [...command.slice(0, -1), '--require', join(dir, 'report-loaded.cjs'), entry] })

  const answer = await request(`${proxy.url}/api/server/ping`)
  t.equal(await answer.body.text(), 'pong', 'it proxies')
  const metrics = await request(`${proxy.adminUrl}/metrics`)
  t.equal(metrics.statusCode, 200, 'and serves its metrics (prom-client, loaded on demand, is in the bundle too)')
  await metrics.body.dump()

  // 'close', not 'exit': the report written at exit may still be in the pipe when 'exit' fires
  const closed = once(proxy.child, 'close')
  proxy.child.kill('SIGTERM')
  await within(closed, 10_000, 'the exit after SIGTERM')
  const report = /^LOADED (.*)$/m.exec(proxy.output())?.[1]
  t.ok(report, 'the preload reported what was loaded')
  const loaded = JSON.parse(report ?? '[]') as string[]
  t.ok(loaded.includes(entry), `${entry} itself is among them`)

  const fromNodeModules = loaded.filter(file => file.startsWith(join(root, 'node_modules') + sep))
  t.ok(fromNodeModules.some(file => packageOf(file) === 'pino'), 'pino is read from node_modules')
  const allowed = pinoPackages()
  t.same([...new Set(fromNodeModules.map(packageOf))].filter(name => !allowed.has(name)), [],
    `no package but pino and its dependencies (${[...allowed].join(', ')}) is read from node_modules`)
  t.same(loaded.filter(file => !file.startsWith(join(root, 'node_modules') + sep) && file !== entry && !file.startsWith(dir)), [],
    'nor any other file of the repository')
})

t.test('the bundle carries undici\'s pool, not its index (fetch, WebSocket, caches: ~70 more modules)', async t => {
  const command = await serverCommand()
  const map = JSON.parse(readFileSync(`${command.at(-1) as string}.map`, 'utf8')) as { sources: string[] }
  const undici = map.sources.filter(source => source.includes('node_modules/undici/'))
  t.ok(undici.some(source => source.endsWith('undici/lib/dispatcher/pool.js')), 'the pool is in')
  t.same(undici.filter(source => source.endsWith('undici/index.js') || source.includes('undici/lib/api/') || source.includes('undici/lib/web/websocket/')), [],
    'neither the index nor what only it loads')
})
