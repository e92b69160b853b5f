// The example of docs/embedding.md, run as it is written there (the built package, reached by
// its name): the app's access log comes through the server's logger, one line per request for
// Immich's host. A host app with a logger of its own gets the lines in its own log.
import t from 'tap'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { Writable } from 'node:stream'
import Fastify, { LogController } from 'fastify'
import type { AddressInfo } from 'node:net'
import { startUpstream } from './helper.js'
import { ensureBuilt, root, spawnLogged, type LogLine } from './helpers/ops.js'
import { closedPort } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'
import { app, parseConfig } from '../src/index.js'

async function get (port: number, host: string, path: string): Promise<number | undefined> {
  const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  res.resume()
  await once(res, 'end')
  return res.statusCode
}

function documentedExample (): string {
  const doc = readFileSync(join(root, 'docs', 'embedding.md'), 'utf8')
  const section = doc.slice(doc.indexOf('\n## Example'))
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  if (code === undefined) throw new Error('no ts block in the Example section of docs/embedding.md')
  return code
}

t.test('the documented example logs one access line per request for Immich\'s host', async t => {
  await ensureBuilt()
  const example = documentedExample()
  const listen = "await server.listen({ host: '0.0.0.0', port: 8080 })"
  t.ok(example.includes(listen), 'the example listens on 8080, which the test replaces with a free port')
  // inside the repository (tap's fixtures folder, .tap/fixtures), so that `immich-proxy` resolves to this package
  const dir = t.testdir({ 'example.mjs': example.replace(listen, "await server.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })") })
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const port = await closedPort()
  const { child, lines, output, exited } = spawnLogged(t, [process.execPath, join(dir, 'example.mjs')], dir,
    { PATH: process.env.PATH ?? '', UPSTREAM_URL: upstream.url, PORT: String(port) })
  await waitFor(() => lines.some(line => line.msg === `Server listening at http://127.0.0.1:${port}`) || child.exitCode !== null, 30_000, 'the example to listen', { last: output })

  t.equal(await get(port, 'photos.example.org', '/api/server/ping?key=share-secret'), 200, 'Immich\'s host reaches Immich')
  t.equal(await get(port, 'www.example.org', '/'), 200, 'the host app\'s own route answers')
  await waitFor(() => lines.some(line => line.msg === 'request'), 5000, 'the access line', { last: output })
  child.kill('SIGTERM')
  await within(exited, 10_000, 'the exit')
  const access = lines.filter(line => line.msg === 'request')
  t.equal(access.length, 1, 'one access line, for the request to Immich\'s host')
  t.match(access[0], { level: 30, method: 'GET', path: '/api/server/ping?key=[REDACTED]', status: 200, client: '127.0.0.1' })
  t.notMatch(output(), /share-secret/, 'the share key masked, and in no other line')
})

t.test('a host app\'s own logger carries the access lines; with none, nothing is logged and Immich is still served', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('{"res":"pong"}'))
  const config = parseConfig({ UPSTREAM_URL: upstream.url })
  const written: string[] = []
  const stream = new Writable({ write (chunk: Buffer, encoding, done) { written.push(chunk.toString()); done() } })

  for (const logger of [{ level: 'info', stream }, false]) {
    const server = Fastify({ logger, logController: new LogController({ disableRequestLogging: true }) })
    t.teardown(() => server.close())
    await server.register(app, { ...config, serverName: 'photos.example.org' })
    await server.listen({ host: '127.0.0.1', port: 0 })
    t.equal(await get((server.server.address() as AddressInfo).port, 'photos.example.org', '/api/server/ping'), 200, `logger ${logger === false ? 'off' : 'on'}: Immich answers`)
    await server.close()
  }
  const access = written.map(line => JSON.parse(line) as LogLine).filter(line => line.msg === 'request')
  t.equal(access.length, 1, 'one line, from the server with a logger')
  t.match(access[0], { method: 'GET', path: '/api/server/ping', status: 200, reqId: /^req-/ })
})
