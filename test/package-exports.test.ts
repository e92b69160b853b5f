// What `npm install immich-proxy` gives a Fastify developer: a consumer project outside this
// repository, with the package in its node_modules (linked, as `npm link` or a workspace does),
// type-checks against the published declarations and runs against the built JavaScript,
// reached through package.json "exports" only. The packed files hold both, and the bin.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startUpstream } from './helper.js'
import { ensureBuilt, root } from './helpers/ops.js'
import { EnvSchema } from '../src/config.js'

interface Exit { code: number | null, output: string }

async function exec (file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Exit> {
  return await new Promise(resolve => {
    const child = execFile(file, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : child.exitCode, output: stdout + stderr }))
  })
}

// The consumer: the embedding example of docs/embedding.md (a host app with its own routes, Immich for one
// host name), then a plugin used on its own and the types checked.
const CONSUMER = `import Fastify from 'fastify'
import { request } from 'node:http'
import { app, parseConfig, tls, accessKey, forwardedHeaders, EnvSchema, type AppOptions, type AccessKeyOptions } from 'immich-proxy'

// the standalone proxy's settings: UPSTREAM_URL, ACCESS_KEY, BODY_LIMIT, PROXY_TIMEOUT, ...
const config = parseConfig(process.env)
// Node ends a request after 300 s by default; a long upload needs that limit off
const server = Fastify({ requestTimeout: 0 })

// your own routes, with a host constraint: without one, a route whose path is more specific
// than Immich's catch-all (say /api/x) would answer on Immich's host too
server.get('/', { constraints: { host: 'www.example.org' } }, async () => 'www')

// Immich owns every path of photos.example.org, WebSockets included
await server.register(app, { ...config, serverName: 'photos.example.org' })

const options: AppOptions = { ...config, serverName: 'photos.example.org' }
// @ts-expect-error: bodyLimit is a number of bytes, not nginx syntax
const wrong: AppOptions = { ...options, bodyLimit: '50m' }
void wrong
const keys: AccessKeyOptions = { accessKeys: ['k'] }

// a guard on its own, after the plugins it depends on
await server.register(async scope => {
  await scope.register(tls, {})
  await scope.register(forwardedHeaders, { trustProxy: [] })
  await scope.register(accessKey, keys)
  scope.get('/private', { constraints: { host: 'www.example.org' } }, async () => 'private')
})
await server.listen({ host: '127.0.0.1', port: 0 })
const port = (server.server.address() as { port: number }).port
// node:http, because fetch() does not let a caller choose the Host header
async function get (host: string, path: string): Promise<[number | undefined, string]> {
  return await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, headers: { host } }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', chunk => { body += chunk }).on('end', () => resolve([res.statusCode, body]))
    }).on('error', reject).end()
  })
}
console.log(JSON.stringify({
  resolved: import.meta.resolve('immich-proxy'),
  immich: await get('photos.example.org', '/api/server/ping'),
  www: await get('www.example.org', '/'),
  guarded: (await get('www.example.org', '/private'))[0],
  settings: Object.keys(EnvSchema.properties).length
}))
await server.close()
`

t.test('a consumer project type-checks and runs against the built package', async t => {
  await ensureBuilt()
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string, type: string, exports: Record<string, { types: string, default: string }>
  }
  t.equal(pkg.type, 'module')
  t.same(pkg.exports, { '.': { types: './dist/src/index.d.ts', default: './dist/src/index.js' } })

  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', pkg.name))
  // the consumer's own Fastify and Node types (the same versions, linked from here)
  symlinkSync(join(root, 'node_modules', 'fastify'), join(dir, 'node_modules', 'fastify'))
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }))
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'], skipLibCheck: false }
  }))
  writeFileSync(join(dir, 'consumer.ts'), CONSUMER)

  const tsc = await exec(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], dir)
  t.same(tsc, { code: 0, output: '' }, 'tsc finds the declarations through "exports" and accepts the consumer')

  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const ran = await exec(process.execPath, ['out/consumer.js'], dir, { UPSTREAM_URL: upstream.url })
  t.equal(ran.code, 0, ran.output)
  t.same(JSON.parse(ran.output), {
    resolved: `file://${join(root, 'dist', 'src', 'index.js')}`,
    immich: [200, '{"res":"pong"}'],
    www: [200, 'www'],
    guarded: 403,
    settings: Object.keys(EnvSchema.properties).length
  }, 'the built package, embedded for one host')
})

t.test('the packed files hold the JavaScript, the declarations and the bin', async t => {
  await ensureBuilt()
  const pack = await exec('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], root)
  t.equal(pack.code, 0)
  const files = (JSON.parse(pack.output.slice(pack.output.indexOf('['))) as Array<{ files: Array<{ path: string }> }>)[0].files.map(file => file.path)
  const bin = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['immich-proxy']
  t.equal(bin, './dist/immich-proxy.cjs', 'the bin is the bundle npm start runs')
  for (const file of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/immich-proxy.cjs', 'dist/src/app.d.ts', 'dist/plugins/access-key/access-key.d.ts', 'README.md', 'package.json']) {
    t.ok(files.includes(file), file)
  }
  t.notOk(files.some(file => /^(test|src|plugins|bench)\//.test(file) || file.startsWith('dist/test/')), 'no sources or tests')

  // the bin, run the way the kernel runs its #! line
  const server = join(root, bin)
  const shebang = /^#!(\S+)(?: (.*))?\n/.exec(readFileSync(server, 'utf8'))
  t.ok(shebang, 'the bin starts with #!')
  const [interpreter, argument] = [shebang?.[1] as string, shebang?.[2]]
  const help = await exec(interpreter, [...(argument === undefined ? [] : [argument]), server, '--help'], root)
  t.equal(help.code, 0)
  t.match(help.output, /^immich-proxy: a reverse proxy made for Immich\./)
})
