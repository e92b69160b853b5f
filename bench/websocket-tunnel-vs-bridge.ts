// Our byte tunnel (plugins/forwarding/websocket-tunnel.ts) against a terminate-and-bridge built on
// @fastify/websocket, the way the product card's library would do it: fidelity cases, proxy
// memory per idle socket, and echo round trips over one socket. Each proxy runs in its own
// child process so that its RSS is its own; the upstream (a `ws` server like Immich's
// socket.io endpoint) and the clients run here.
//
//   npx tsx bench/websocket-tunnel-vs-bridge.ts
//
// The bridge is written to be as faithful as a bridge can be (it forwards every header and every
// offered subprotocol, maps 1005/1006 back to "no code"/"drop", relays pings), so that what it
// still loses is what terminating the socket costs, not a careless bridge.
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'

const SOCKETS = 1000
const ECHO_SECONDS = 5

// ---------------------------------------------------------------------------------------------
// The bridge, run as a child process: `tsx bench/websocket-tunnel-vs-bridge.ts bridge-child`

const HOP_BY_HOP = new Set(['connection', 'upgrade', 'host', 'sec-websocket-key', 'sec-websocket-version',
  'sec-websocket-extensions', 'sec-websocket-protocol', 'keep-alive', 'transfer-encoding', 'te', 'trailer'])

async function runBridge (): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { default: fastifyWebsocket } = await import('@fastify/websocket')
  const upstream = new URL(process.env.UPSTREAM_URL ?? '')
  upstream.protocol = upstream.protocol === 'https:' ? 'wss:' : 'ws:'
  const app = Fastify({ logger: false })
  await app.register(fastifyWebsocket)
  app.get('/*', { websocket: true }, (socket, request) => {
    const protocols = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map(p => p.trim()).filter(p => p !== '')
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(request.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = String(value)
    }
    headers['x-forwarded-for'] = request.ip
    const peer = new WebSocket(new URL(request.url, upstream), protocols, { headers })
    const early: Array<[WebSocket.RawData, boolean]> = []
    const closeWith = (target: WebSocket, code: number, reason: Buffer): void => {
      if (code === 1005) target.close()
      else if (code === 1006 || code === 1015) target.terminate()
      else target.close(code, reason)
    }
    socket.on('message', (data, isBinary) => {
      if (peer.readyState === WebSocket.OPEN) peer.send(data, { binary: isBinary })
      else early.push([data, isBinary])
    })
    peer.on('open', () => { for (const [data, isBinary] of early.splice(0)) peer.send(data, { binary: isBinary }) })
    peer.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
    socket.on('ping', data => { if (peer.readyState === WebSocket.OPEN) peer.ping(data) })
    peer.on('ping', data => socket.ping(data))
    socket.on('close', (code, reason) => {
      if (peer.readyState === WebSocket.OPEN) closeWith(peer, code, reason)
      else if (peer.readyState === WebSocket.CONNECTING) peer.once('open', () => closeWith(peer, code, reason))
    })
    peer.on('close', (code, reason) => { if (socket.readyState === WebSocket.OPEN) closeWith(socket, code, reason) })
    socket.on('error', () => peer.terminate())
    peer.on('error', () => socket.terminate())
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.send?.({ port: (app.server.address() as AddressInfo).port })
  process.on('disconnect', () => process.exit(0))
}

// ---------------------------------------------------------------------------------------------
// The measuring side

interface ProxyProcess { name: string, child: ChildProcess, url: string }

const here = fileURLToPath(import.meta.url)
const tunnelEntry = fileURLToPath(new URL('./lib/websocket-proxy-process.ts', import.meta.url))

async function startProxy (name: 'tunnel' | 'bridge', upstream: string): Promise<ProxyProcess> {
  const child = fork(name === 'tunnel' ? tunnelEntry : here, name === 'tunnel' ? [] : ['bridge-child'], {
    execArgv: ['--import', 'tsx'],
    env: { PATH: process.env.PATH, UPSTREAM_URL: upstream, LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const [message] = await once(child, 'message') as [{ port: number }]
  return { name, child, url: `ws://127.0.0.1:${message.port}` }
}

async function stop (proxy: ProxyProcess): Promise<void> {
  const exited = once(proxy.child, 'exit')
  proxy.child.kill()
  await exited
}

async function rss (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) * 1024
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function timed<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Immich's socket.io endpoint reduced to what is measured: echo, picks 'b'. engine.io leaves
 * permessage-deflate off by default; the fidelity cases turn it on to see whether it passes.
 */
async function startUpstream (perMessageDeflate: boolean): Promise<{ url: string, close: () => Promise<void>, offered: string[][], next: () => Promise<[WebSocket, IncomingMessage]>, wss: WebSocketServer }> {
  const server = createServer()
  const offered: string[][] = []
  const wss = new WebSocketServer({
    server,
    perMessageDeflate,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: protocols => {
      offered.push([...protocols])
      return protocols.has('b') ? 'b' : [...protocols][0] ?? false
    }
  })
  wss.on('connection', ws => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    offered,
    wss,
    next: async () => await once(wss, 'connection') as [WebSocket, IncomingMessage],
    close: async () => {
      for (const ws of wss.clients) ws.terminate()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

type Upstream = Awaited<ReturnType<typeof startUpstream>>

async function open (url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options)
  await timed(once(ws, 'open'), 5000, 'open')
  return ws
}

async function closeCode (ws: WebSocket): Promise<number> {
  return (await timed(once(ws, 'close'), 5000, 'close'))[0] as number
}

/** Each fidelity case: pass or not, and what was seen. */
async function fidelity (url: string, upstream: Upstream, downUrl: string): Promise<Record<string, [boolean, string]>> {
  const path = '/api/socket.io/?EIO=4&transport=websocket'
  const cases: Record<string, [boolean, string]> = {}

  upstream.offered.length = 0
  // every client waits for its upstream socket too: the bridge accepts before it dials
  const [, protocolClient] = await Promise.all([upstream.next(), open(url + path, ['a', 'b', 'c'])])
  const offered = upstream.offered.at(-1)?.join(',') ?? ''
  cases['all subprotocols reach Immich, client gets its choice'] = [offered === 'a,b,c' && protocolClient.protocol === 'b', `Immich saw [${offered}], client got '${protocolClient.protocol}'`]
  protocolClient.terminate()

  const codes: number[] = []
  for (const closer of ['client', 'upstream']) {
    const [[upstreamSide], client] = await Promise.all([upstream.next(), open(url + path)])
    const receiver = closer === 'client' ? upstreamSide : client
    const closed = closeCode(receiver)
    ;(closer === 'client' ? client : upstreamSide).close()
    codes.push(await closed)
    client.terminate()
  }
  cases['close without a code stays without one (1005)'] = [codes.every(code => code === 1005), `client→Immich ${codes[0]}, Immich→client ${codes[1]}`]

  const [, binaryClient] = await Promise.all([upstream.next(), open(url + path, [], { maxPayload: 64 * 1024 * 1024 })])
  const payload = randomBytes(5 * 1024 * 1024)
  const echoed = timed(once(binaryClient, 'message'), 10_000, '5 MB echo')
  binaryClient.send(payload)
  const [data, isBinary] = await echoed as [Buffer, boolean]
  cases['5 MB binary round trip'] = [isBinary && data.equals(payload), `${data.length} bytes back, binary=${String(isBinary)}`]
  binaryClient.terminate()

  const [[upstreamSide], deflateClient] = await Promise.all([upstream.next(), open(url + path, [], { perMessageDeflate: true })])
  cases['permessage-deflate end to end'] = [deflateClient.extensions !== '' && deflateClient.extensions === upstreamSide.extensions,
    `client '${deflateClient.extensions}', Immich '${upstreamSide.extensions}'`]
  deflateClient.terminate()

  const downClient = new WebSocket(downUrl + path)
  let upgraded = false
  downClient.on('upgrade', () => { upgraded = true })
  downClient.on('error', () => {})
  const outcome = await timed(new Promise<string>(resolve => {
    downClient.once('unexpected-response', (req, res: IncomingMessage) => resolve(`HTTP ${res.statusCode ?? 0}`))
    downClient.once('close', code => resolve(`${upgraded ? '101, then close ' : 'close '}${code}`))
  }), 10_000, 'Immich down')
  cases['Immich down: 502, never 101 then close'] = [outcome === 'HTTP 502' && !upgraded, outcome]
  downClient.terminate()
  return cases
}

/** Proxy RSS growth per idle socket with SOCKETS open at once. */
async function memoryPerSocket (proxy: ProxyProcess, upstream: Upstream): Promise<{ perSocket: number, total: number }> {
  const pid = proxy.child.pid as number
  // warm the code paths once, so that what follows is per-socket state, not first-use costs
  const warm = await Promise.all(Array.from({ length: 20 }, async () => await open(proxy.url + '/api/socket.io/')))
  for (const ws of warm) ws.close()
  await sleep(1000)
  const before = await rss(pid)
  const clients: WebSocket[] = []
  for (let batch = 0; batch < SOCKETS; batch += 100) {
    clients.push(...await Promise.all(Array.from({ length: 100 }, async () => await open(proxy.url + '/api/socket.io/?EIO=4&transport=websocket'))))
  }
  // the bridge dials Immich after accepting the client
  for (let i = 0; i < 100 && upstream.wss.clients.size < SOCKETS; i++) await sleep(100)
  if (upstream.wss.clients.size < SOCKETS) throw new Error(`only ${upstream.wss.clients.size} sockets reached the upstream`)
  await sleep(1000)
  const after = await rss(pid)
  for (const ws of clients) ws.terminate()
  return { perSocket: (after - before) / SOCKETS, total: after - before }
}

/** Sequential round trips of a small socket.io-like text message over one socket. */
async function echoRate (url: string): Promise<number> {
  const ws = await open(url + '/api/socket.io/?EIO=4&transport=websocket', [], { perMessageDeflate: false })
  const message = '42["on_asset_update",{"id":"6f0c2a8e-7a1e-4c59-9d2b-8f1f6c2b1a3d","isFavorite":true}]'
  let count = 0
  const deadline = Date.now() + ECHO_SECONDS * 1000
  const started = Date.now()
  while (Date.now() < deadline) {
    const reply = once(ws, 'message')
    ws.send(message)
    await reply
    count++
  }
  const rate = count / ((Date.now() - started) / 1000)
  ws.terminate()
  return rate
}

async function main (): Promise<void> {
  const deflating = await startUpstream(true)
  const plain = await startUpstream(false)
  const down = createServer()
  await new Promise<void>(resolve => down.listen(0, '127.0.0.1', resolve))
  const downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`
  await new Promise<void>(resolve => down.close(() => resolve()))
  const names = ['tunnel', 'bridge'] as const

  const cases: Record<string, Record<string, [boolean, string]>> = {}
  const memory: Record<string, { perSocket: number, total: number }> = {}
  for (const name of names) {
    const proxy = await startProxy(name, deflating.url)
    const downProxy = await startProxy(name, downUrl)
    cases[name] = await fidelity(proxy.url, deflating, downProxy.url)
    await stop(downProxy)
    await stop(proxy)
    const fresh = await startProxy(name, plain.url)
    memory[name] = await memoryPerSocket(fresh, plain)
    await stop(fresh)
    await sleep(1000)
  }

  // Round trips are sensitive to whatever else the machine runs, which only ever lowers them:
  // the proxies take turns, three rounds each, and the best round is reported.
  const rates: Record<string, number[]> = { direct: [], tunnel: [], bridge: [], 'tunnel+deflate': [], 'bridge+deflate': [] }
  const proxies = {
    tunnel: await startProxy('tunnel', plain.url),
    bridge: await startProxy('bridge', plain.url),
    'tunnel+deflate': await startProxy('tunnel', deflating.url),
    'bridge+deflate': await startProxy('bridge', deflating.url)
  }
  for (let round = 0; round < 3; round++) {
    rates.direct.push(await echoRate(plain.url.replace('http:', 'ws:')))
    for (const [name, proxy] of Object.entries(proxies)) rates[name].push(await echoRate(proxy.url))
  }
  for (const proxy of Object.values(proxies)) await stop(proxy)
  await deflating.close()
  await plain.close()

  const cpu = cpus()
  console.log(`Node ${process.version}, ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${new Date().toISOString().slice(0, 10)}\n`)
  console.log(`| | ${names.join(' | ')} |`)
  console.log(`|---|${names.map(() => '---').join('|')}|`)
  for (const caseName of Object.keys(cases.tunnel)) {
    console.log(`| ${caseName} | ${names.map(name => `${cases[name][caseName][0] ? 'yes' : '**no**'} (${cases[name][caseName][1]})`).join(' | ')} |`)
  }
  console.log(`| proxy RSS per idle socket, ${SOCKETS} open | ${names.map(name => `${(memory[name].perSocket / 1024).toFixed(1)} KiB (${(memory[name].total / 2 ** 20).toFixed(1)} MiB in all)`).join(' | ')} |`)
  const rate = (name: string): string => `${Math.max(...rates[name]).toFixed(0)}/s`
  console.log(`| echo round trips/s, one socket, best of 3 × ${ECHO_SECONDS} s (direct, no proxy: ${rate('direct')}) | ${names.map(name => rate(name)).join(' | ')} |`)
  console.log(`| same, Immich accepting permessage-deflate (the client does not offer it) | ${names.map(name => rate(`${name}+deflate`)).join(' | ')} |`)
}

if (process.argv[2] === 'bridge-child') await runBridge()
else await main()
