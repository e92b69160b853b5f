// The fidelity cases of docs/design.md run against immich-proxy (its bundle, as `npm start` runs
// it) and against @fastify/http-proxy configured as well as its options allow
// (bench/fastify-http-proxy-configured.mjs), each recorded as passed or failed with what was
// seen. Real servers on 127.0.0.1, each proxy in a process of its own; every step is bounded in
// time and the whole run stops by itself. Prints a markdown table; exits 0 whatever the cases
// found, 1 if the run itself failed.
//
//   npx tsx bench/fidelity-http-proxy.ts
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket, { WebSocketServer } from 'ws'
import { ensureBuilt, root } from '../test/helpers/ops.js'
import { START_ENTRY, START_FLAGS } from '../test/helpers/start-flags.js'
import { freePort, getStatus, sleep } from './lib/processes.js'

// the proxies' upstream timeout for the 504 case only; every other instance keeps 600 s
const SHORT_TIMEOUT_MS = 2000
const STEP_MS = 10_000
const RUN_MS = 180_000

type Result = [passed: boolean, seen: string]

async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// Immich's stand-in: records what reaches it

interface Seen { method: string, url: string, headers: IncomingMessage['headers'], body: Buffer }

interface UpstreamConnection { ws: WebSocket, offered: string[] }

async function startUpstream (): Promise<{
  url: string
  seen: Map<string, Seen>
  counts: Map<string, number>
  next: () => Promise<UpstreamConnection>
  close: () => Promise<void>
}> {
  const seen = new Map<string, Seen>()
  const counts = new Map<string, number>()
  const held = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    const id = String(req.headers['x-case'] ?? '')
    counts.set(id, (counts.get(id) ?? 0) + 1)
    if (req.url === '/api/server/ping' || req.url === '/small') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"res":"pong"}')
      return
    }
    if (req.url === '/api/fidelity/unavailable') {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"starting"}')
      return
    }
    if (req.url === '/api/fidelity/silent') {
      // never answers; the proxy gives up and closes
      held.add(res)
      res.on('close', () => held.delete(res))
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      seen.set(id, { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
  })
  const waiting: Array<(connection: UpstreamConnection) => void> = []
  const arrived: UpstreamConnection[] = []
  const accept = (ws: WebSocket, offered: string[]): void => {
    ws.on('error', () => {})
    const connection = { ws, offered }
    const waiter = waiting.shift()
    if (waiter !== undefined) waiter(connection)
    else arrived.push(connection)
  }
  // picks 'b' when offered, as a server with its own preference does
  const handleProtocols = (protocols: Set<string>): string | false => protocols.has('b') ? 'b' : [...protocols][0] ?? false
  const deflating = new WebSocketServer({ noServer: true, perMessageDeflate: true, handleProtocols })
  const plain = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {})
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map(p => p.trim()).filter(p => p !== '')
    if (req.url?.startsWith('/api/refuse') === true) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: 21\r\nconnection: close\r\n\r\n{"message":"refused"}')
      return
    }
    const wss = req.url?.startsWith('/api/plain') === true ? plain : deflating
    wss.handleUpgrade(req, socket, head, ws => accept(ws, offered))
  })
  server.keepAliveTimeout = 600_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    counts,
    next: async () => await within(new Promise<UpstreamConnection>(resolve => {
      const connection = arrived.shift()
      if (connection !== undefined) resolve(connection)
      else waiting.push(resolve)
    }), STEP_MS, 'upstream WebSocket'),
    close: async () => {
      for (const wss of [deflating, plain]) for (const ws of wss.clients) ws.terminate()
      for (const res of held) res.destroy()
      server.closeAllConnections()
      server.close()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The two proxies, each a process of its own

interface Proxy { url: string, child: ChildProcess }

const children = new Set<ChildProcess>()
process.once('exit', () => { for (const child of children) child.kill('SIGKILL') })

// no developer's .env in the repository reaches immich-proxy
const cwd = mkdtempSync(join(tmpdir(), 'immich-fidelity-'))
process.once('exit', () => rmSync(cwd, { recursive: true, force: true }))

type ProxyName = 'immich-proxy' | 'configured @fastify/http-proxy'
const NAMES: ProxyName[] = ['immich-proxy', 'configured @fastify/http-proxy']

async function startProxy (name: ProxyName, upstream: string, timeoutMs?: number): Promise<Proxy> {
  const port = await freePort()
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', UPSTREAM_URL: upstream, PORT: String(port) }
  let args: string[]
  if (name === 'immich-proxy') {
    Object.assign(env, { HOST: '127.0.0.1', ADMIN_PORT: 'off', LOG_LEVEL: 'warn', NODE_ENV: 'production' })
    if (timeoutMs !== undefined) env.PROXY_TIMEOUT = `${timeoutMs}ms`
    args = [...START_FLAGS, join(root, START_ENTRY)]
  } else {
    if (timeoutMs !== undefined) env.PROXY_TIMEOUT_MS = String(timeoutMs)
    args = [join(root, 'bench/fastify-http-proxy-configured.mjs')]
  }
  const child = spawn(process.execPath, args, { cwd: name === 'immich-proxy' ? cwd : root, env, stdio: ['ignore', 'ignore', 'inherit'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const url = `http://127.0.0.1:${port}`
  // any answer will do: the instance in front of a closed port answers 502
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      await getStatus(`${url}/small`)
      return { url, child }
    } catch {}
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start (exit ${child.exitCode ?? 'none'})`)
    await sleep(20)
  }
}

async function stopProxy (proxy: Proxy): Promise<void> {
  if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) return
  const exited = once(proxy.child, 'exit')
  proxy.child.kill('SIGTERM')
  const timer = setTimeout(() => proxy.child.kill('SIGKILL'), 3000)
  await exited
  clearTimeout(timer)
}

// ---------------------------------------------------------------------------------------------
// Clients

interface Answer { status: number, body: string }

/** One request on a fresh connection, the target and headers exactly as given. */
async function send (base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer, expectContinue = false): Promise<Answer> {
  const { hostname, port } = new URL(base)
  return await within(new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (expectContinue) req.once('continue', () => req.end(body))
    else req.end(body)
  }), STEP_MS + SHORT_TIMEOUT_MS, `${method} ${path}`)
}

async function openSocket (url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options)
  ws.on('error', () => {})
  await within(once(ws, 'open'), STEP_MS, `open ${url}`)
  return ws
}

async function closeOf (ws: WebSocket): Promise<string> {
  const [code, reason] = await within(once(ws, 'close'), STEP_MS, 'close') as [number, Buffer]
  return reason.length === 0 ? String(code) : `${code} '${reason.toString()}'`
}

/** What a client sees of an upgrade that Immich does not take: an HTTP status, or a 101 and a close. */
async function upgradeOutcome (url: string): Promise<Result> {
  const ws = new WebSocket(url)
  let upgraded = false
  ws.on('upgrade', () => { upgraded = true })
  ws.on('error', () => {})
  const outcome = await within(new Promise<string>(resolve => {
    ws.once('unexpected-response', (req, res: IncomingMessage) => {
      resolve(`HTTP ${res.statusCode ?? 0}`)
      req.destroy()
    })
    ws.once('close', code => resolve(`${upgraded ? '101, then close' : 'close'} ${code}`))
  }), STEP_MS, 'refused upgrade')
  ws.terminate()
  return [!upgraded && /^HTTP (403|502)$/.test(outcome), outcome]
}

// ---------------------------------------------------------------------------------------------
// The cases

type Upstream = Awaited<ReturnType<typeof startUpstream>>

interface Instances { normal: Proxy, short: Proxy, down: Proxy, downPort: string }

const CASES: Array<[string, (p: Instances, upstream: Upstream) => Promise<Result>]> = []
const test = (name: string, run: (p: Instances, upstream: Upstream) => Promise<Result>): void => { CASES.push([name, run]) }

let caseNumber = 0
/** Sends a request tagged for the upstream's record; returns the answer and what Immich saw. */
async function through (proxy: Proxy, upstream: Upstream, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer, expectContinue = false): Promise<{ answer: Answer, seen?: Seen, id: string }> {
  const id = `case-${++caseNumber}`
  const answer = await send(proxy.url, method, path, { 'x-case': id, ...headers }, body, expectContinue)
  return { answer, seen: upstream.seen.get(id), id }
}

const targetCase = (path: string) => async (p: Instances, upstream: Upstream): Promise<Result> => {
  const { answer, seen } = await through(p.normal, upstream, 'GET', path)
  return [seen?.url === path, seen === undefined ? `client got ${answer.status}, Immich saw nothing` : `Immich saw ${seen.url}`]
}
test('target byte for byte: `/api/assets/%2e%2e/x?a=%20&b`', targetCase('/api/assets/%2e%2e/x?a=%20&b'))
test('target byte for byte: query `?a=%20&b&c=1+2&d=%7B`', targetCase('/api/search?a=%20&b&c=1+2&d=%7B'))
test('target byte for byte: `/api//assets//x`', targetCase('/api//assets//x'))
test('target byte for byte: `//api/assets`', targetCase('//api/assets'))
test('target byte for byte: `/api/x/{a}|\'b\'`', targetCase('/api/x/{a}|\'b\''))

const bodyCase = (method: string, path: string) => async (p: Instances, upstream: Upstream): Promise<Result> => {
  const body = Buffer.from('{"ids":["6f0c2a8e-7a1e-4c59-9d2b-8f1f6c2b1a3d"]}')
  const { answer, seen } = await through(p.normal, upstream, method, path, { 'content-type': 'application/json', 'content-length': String(body.length) }, body)
  return [seen?.body.equals(body) === true, seen === undefined ? `client got ${answer.status}, Immich saw nothing` : `Immich got ${seen.body.length} of ${body.length} bytes`]
}
test('body on GET reaches Immich', bodyCase('GET', '/api/fidelity/get-body'))
test('body on DELETE reaches Immich', bodyCase('DELETE', '/api/assets'))

test('2 MiB text/plain body streams to Immich (no 1 MiB parser limit)', async (p, upstream) => {
  const body = Buffer.alloc(2 * 1024 * 1024, 'x')
  const { answer, seen } = await through(p.normal, upstream, 'POST', '/api/fidelity/text', { 'content-type': 'text/plain', 'content-length': String(body.length) }, body)
  return [answer.status === 200 && seen?.body.length === body.length, `client got ${answer.status}, Immich got ${seen?.body.length ?? 0} bytes`]
})

test('upload with `Expect: 100-continue` reaches Immich', async (p, upstream) => {
  const body = Buffer.alloc(64 * 1024, 'y')
  const { answer, seen } = await through(p.normal, upstream, 'POST', '/api/assets', { 'content-type': 'application/octet-stream', 'content-length': String(body.length), expect: '100-continue' }, body, true)
  return [answer.status === 200 && seen?.body.length === body.length, `client got ${answer.status}, Immich got ${seen?.body.length ?? 0} bytes`]
})

const HOST = 'photos.example.com:8443'
test('`Host` with its port reaches Immich unchanged', async (p, upstream) => {
  const { seen } = await through(p.normal, upstream, 'GET', '/api/fidelity/host', { host: HOST })
  return [seen?.headers.host === HOST, `Immich saw Host ${seen?.headers.host ?? '(nothing)'}`]
})

test('X-Real-IP, X-Forwarded-For (appended), -Proto, -Host right', async (p, upstream) => {
  const { seen } = await through(p.normal, upstream, 'GET', '/api/fidelity/forwarded', { host: HOST, 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '198.51.100.1' })
  const h = seen?.headers ?? {}
  const got = `real-ip ${String(h['x-real-ip'])}, for ${String(h['x-forwarded-for'])}, proto ${String(h['x-forwarded-proto'])}, host ${String(h['x-forwarded-host'])}`
  return [h['x-real-ip'] === '127.0.0.1' && h['x-forwarded-for'] === '203.0.113.7, 127.0.0.1' && h['x-forwarded-proto'] === 'http' && h['x-forwarded-host'] === HOST, got]
})

test('GET answered 503 is not retried (Immich sees one request)', async (p, upstream) => {
  const { answer, id } = await through(p.normal, upstream, 'GET', '/api/fidelity/unavailable')
  // a retry after the answer would show here
  await sleep(500)
  const count = upstream.counts.get(id) ?? 0
  return [answer.status === 503 && count === 1, `client got ${answer.status}, Immich saw ${count} request(s)`]
})

test('Immich down: 502, no internal address in the body', async p => {
  const answer = await send(p.down.url, 'GET', '/api/server/about', {})
  const leaks = answer.body.includes('127.0.0.1') || answer.body.includes(p.downPort)
  return [answer.status === 502 && !leaks, `${answer.status} ${answer.body}`]
})

test(`Immich silent: 504 (upstream timeout ${SHORT_TIMEOUT_MS / 1000} s in both)`, async p => {
  const started = Date.now()
  let outcome: string
  let status = 0
  try {
    const answer = await send(p.short.url, 'GET', '/api/fidelity/silent', {})
    status = answer.status
    outcome = `${answer.status} after ${((Date.now() - started) / 1000).toFixed(1)} s: ${answer.body}`
  } catch (error) {
    outcome = `no answer: ${(error as Error).message}`
  }
  return [status === 504, outcome]
})

test('WebSocket: every offered subprotocol reaches Immich, client gets Immich\'s choice', async (p, upstream) => {
  const [connection, client] = await Promise.all([upstream.next(), openSocket(`${p.normal.url.replace('http', 'ws')}/api/socket.io/`, ['a', 'b', 'c'])])
  client.terminate()
  return [connection.offered.join(',') === 'a,b,c' && client.protocol === 'b', `Immich saw [${connection.offered.join(',')}], client got '${client.protocol}'`]
})

test('WebSocket: permessage-deflate negotiated end to end (Immich accepting; Immich declining)', async (p, upstream) => {
  const seen: string[] = []
  let passed = true
  for (const [path, accepting] of [['/api/socket.io/', true], ['/api/plain/', false]] as const) {
    const [connection, client] = await Promise.all([upstream.next(), openSocket(`${p.normal.url.replace('http', 'ws')}${path}`, [], { perMessageDeflate: true })])
    passed &&= client.extensions === connection.ws.extensions && (client.extensions !== '') === accepting
    seen.push(`client '${client.extensions}', Immich '${connection.ws.extensions}'`)
    client.terminate()
  }
  return [passed, seen.join('; ')]
})

test('WebSocket: Immich refuses the upgrade (403): its status or 502, never 101', async p => await upgradeOutcome(`${p.normal.url.replace('http', 'ws')}/api/refuse/`))
test('WebSocket: Immich down: 502, never 101', async p => await upgradeOutcome(`${p.down.url.replace('http', 'ws')}/api/socket.io/`))

test('WebSocket: close codes pass both ways (4001 + reason, and none: 1005)', async (p, upstream) => {
  const seen: string[] = []
  const expected = ["4001 'bye'", "4002 'later'", '1005', '1005']
  for (const [from, code, reason] of [['client', 4001, 'bye'], ['Immich', 4002, 'later'], ['client'], ['Immich']] as Array<[string, number?, string?]>) {
    const [connection, client] = await Promise.all([upstream.next(), openSocket(`${p.normal.url.replace('http', 'ws')}/api/socket.io/`)])
    const closer = from === 'client' ? client : connection.ws
    const receiver = from === 'client' ? connection.ws : client
    const received = closeOf(receiver)
    closer.close(code, reason)
    seen.push(`${from}→ ${await received}`)
    client.terminate()
  }
  return [seen.every((s, i) => s.endsWith(`→ ${expected[i]}`)), seen.join(', ')]
})

// ---------------------------------------------------------------------------------------------

function version (name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

async function main (): Promise<void> {
  await ensureBuilt()
  const upstream = await startUpstream()
  const results = new Map<ProxyName, Result[]>()
  try {
    for (const name of NAMES) {
      const downPort = String(await freePort())
      const instances: Instances = {
        normal: await startProxy(name, upstream.url),
        short: await startProxy(name, upstream.url, SHORT_TIMEOUT_MS),
        down: await startProxy(name, `http://127.0.0.1:${downPort}`),
        downPort
      }
      const list: Result[] = []
      for (const [caseName, run] of CASES) {
        try {
          list.push(await run(instances, upstream))
        } catch (error) {
          list.push([false, `error: ${(error as Error).message}`])
        }
        process.stderr.write(`${name}: ${caseName}: ${list.at(-1)?.[0] === true ? 'pass' : 'FAIL'}\n`)
      }
      results.set(name, list)
      for (const proxy of [instances.normal, instances.short, instances.down]) await stopProxy(proxy)
    }
  } finally {
    await upstream.close()
  }

  const escape = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  console.log(`Node ${process.version}, fastify ${version('fastify')}, @fastify/http-proxy ${version('@fastify/http-proxy')}, @fastify/reply-from ${version('@fastify/reply-from')}, ws ${version('ws')}, ${new Date().toISOString().slice(0, 10)}\n`)
  console.log(`| case | ${NAMES.join(' | ')} |`)
  console.log(`|---|${NAMES.map(() => '---').join('|')}|`)
  CASES.forEach(([caseName], i) => {
    console.log(`| ${escape(caseName)} | ${NAMES.map(name => {
      const [passed, seen] = (results.get(name) as Result[])[i]
      return `${passed ? 'pass' : '**fail**'} (${escape(seen)})`
    }).join(' | ')} |`)
  })
  const passes = NAMES.map(name => `${name} ${(results.get(name) as Result[]).filter(r => r[0]).length}/${CASES.length}`)
  console.log(`\nPassed: ${passes.join(', ')}`)
}

const watchdog = setTimeout(() => {
  console.error(`fidelity run still going after ${RUN_MS / 1000} s: stopped`)
  process.exit(1)
}, RUN_MS)
try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  clearTimeout(watchdog)
}
