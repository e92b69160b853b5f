// A real ACME server for the certificate tests: Debian's pebble (Let's Encrypt's test CA) with
// pebble-challtestsrv as its DNS server, so that every name resolves to 127.0.0.1 and pebble
// validates challenges against the proxy's own listeners. Nothing leaves the machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { chmodSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import type { Test } from 'tap'
import { Agent, request } from 'undici'
import { makeCertificate } from './tls.js'
import { getJson, type Listeners, temporaryDirectory } from './ops.js'
import { waitFor } from './wait.js'
import { closedPort } from './websocket.js'

export interface Pebble {
  /** The ACME directory: https://127.0.0.1:<port>/dir */
  directory: string
  /** PEM file of the certificate pebble's ACME API is served with (what ACME_CA_FILE takes). */
  caFile: string
  /** The same certificate as text. */
  ca: string
  /** The root pebble issues under, fetched from its management API (`/roots/0`). */
  root: () => Promise<string>
  /** Everything pebble wrote so far (its log: one line per order, validation and issue). */
  output: () => string
  /** How many orders pebble has created so far, counted in its log. */
  orders: () => number
  /** pebble-challtestsrv's management API (http://127.0.0.1:<port>): /set-txt, /clear-txt. */
  dnsManagement: string
  /** Kills both processes now rather than when the test ends. */
  stop: () => Promise<void>
}

/** What owns the processes and files: a test, or the bench (bench/acme-first-answer.ts). */
export interface Owner { teardown: (cleanup: () => unknown) => void }

export interface PebbleOptions {
  /** The port pebble connects to for http-01 (the proxy's HTTP_PORT listener). */
  httpPort?: number
  /** The port pebble connects to for tls-alpn-01 (the proxy's HTTPS listener). */
  tlsPort?: number
  /** External account binding required, with these key identifiers and their HMAC keys (base64url). */
  eab?: Record<string, string>
}

const PROGRAMS = ['pebble', 'pebble-challtestsrv']

/** The programs this helper needs and does not find, for a test to skip or fail with their names. */
export function missingPebble (): string[] {
  return PROGRAMS.filter(program => spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0)
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
    socket.on('error', () => resolve(false))
  })
}

function started (t: Owner, command: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess, output: () => string, stop: () => Promise<void> } {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout?.on('data', (chunk: Buffer) => { text += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { text += chunk.toString() })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
  t.teardown(stop)
  return { child, output: () => text, stop }
}

/**
 * pebble and its DNS server on free loopback ports, stopped when the test ends. Validations go to
 * 127.0.0.1 on `httpPort` / `tlsPort`, immediately (PEBBLE_VA_NOSLEEP); its nonces are all good
 * (PEBBLE_WFE_NONCEREJECT=0), so a test's count of requests does not depend on luck.
 */
export async function startPebble (t: Owner, options: PebbleOptions = {}): Promise<Pebble> {
  const missing = missingPebble()
  if (missing.length > 0) {
    throw new Error(`the ACME tests need ${missing.join(' and ')}: apt-get install pebble (Debian/Ubuntu), or run npm test as root, which installs it`)
  }
  // its own ports are found free, then bound by pebble: one taken meanwhile by a parallel test
  // makes it exit, and it is started again on new ones
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPebbleOnce(t, options)
    } catch (error) {
      if (!(error instanceof ExitedEarly) || !/address already in use/.test(error.message) || attempt === 3) throw error
    }
  }
}

class ExitedEarly extends Error {}

async function startPebbleOnce (t: Owner, options: PebbleOptions): Promise<Pebble> {
  const dir = temporaryDirectory(t, 'immich-proxy-pebble-')
  // pebble's own HTTPS (ACME API and management): a certificate for 127.0.0.1 the test trusts
  // a name of its own: two pebbles in one test process are two CAs to trust, and OpenSSL finds an
  // issuer by its name
  const certificate = await makeCertificate(`pebble-${randomUUID()}.test`)
  const caFile = join(dir, 'pebble-api.pem')
  writeFileSync(caFile, certificate.cert)
  writeFileSync(join(dir, 'pebble-api.key'), certificate.key)

  const [acmePort, managementPort, dnsPort, challtestsrvPort] = [await closedPort(), await closedPort(), await closedPort(), await closedPort()]
  const config = join(dir, 'pebble-config.json')
  writeFileSync(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: caFile,
      privateKey: join(dir, 'pebble-api.key'),
      // where pebble's validation authority connects: the proxy under test
      httpPort: options.httpPort ?? 80,
      tlsPort: options.tlsPort ?? 443,
      ocspResponderURL: '',
      externalAccountBindingRequired: options.eab !== undefined,
      ...(options.eab === undefined ? {} : { externalAccountMACKeys: options.eab })
    }
  }))

  const env: NodeJS.ProcessEnv = { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' }
  delete env.PEBBLE_VA_ALWAYS_VALID
  // only the DNS server: the proxy answers the challenges itself; no AAAA answer, so pebble
  // does not try ::1, where the proxy does not listen
  const dns = started(t, 'pebble-challtestsrv', [
    '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    '-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${challtestsrvPort}`,
    '-http01', '', '-https01', '', '-tlsalpn01', ''
  ], env)
  const pebble = started(t, 'pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], env)

  const dispatcher = new Agent({ connect: { ca: certificate.cert } })
  t.teardown(async () => await dispatcher.close())
  const directory = `https://127.0.0.1:${acmePort}/dir`
  const answers = async (url: string): Promise<boolean> => {
    for (const child of [dns.child, pebble.child]) {
      if (child.exitCode !== null) {
        await Promise.all([dns.stop(), pebble.stop()])
        throw new ExitedEarly(`${child.spawnfile} exited with ${child.exitCode}:\n${dns.output()}\n${pebble.output()}`)
      }
    }
    try {
      const response = await request(url, { dispatcher })
      await response.body.dump()
      return response.statusCode === 200
    } catch {
      return false
    }
  }
  await waitFor(async () => await accepts(challtestsrvPort) && await answers(directory), 10_000,
    'pebble\'s directory', { intervalMs: 100, last: () => pebble.output() })

  return {
    directory,
    caFile,
    ca: certificate.cert,
    async root () {
      const response = await request(`https://127.0.0.1:${managementPort}/roots/0`, { dispatcher })
      if (response.statusCode !== 200) throw new Error(`pebble's /roots/0 answered ${response.statusCode}`)
      return await response.body.text()
    },
    output: pebble.output,
    dnsManagement: `http://127.0.0.1:${challtestsrvPort}`,
    orders: () => pebble.output().match(/Added order/g)?.length ?? 0,
    stop: async () => { await Promise.all([pebble.stop(), dns.stop()]) }
  }
}

function inUse (error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
}

/**
 * pebble validating on two free ports, and `start` listening on them. pebble must know the ports
 * before the proxy starts and the proxy needs pebble's directory, so a port found free but taken
 * by a parallel test before the proxy binds it means new ports and a new pebble.
 */
export async function withPebble<T> (t: Test, start: (pebble: Pebble, ports: { port: number, httpPort: number }) => Promise<T>): Promise<{ pebble: Pebble, port: number, httpPort: number, started: T }> {
  for (let attempt = 1; ; attempt++) {
    const ports = { port: await closedPort(), httpPort: await closedPort() }
    const pebble = await startPebble(t, { tlsPort: ports.port, httpPort: ports.httpPort })
    try {
      return { pebble, ...ports, started: await start(pebble, ports) }
    } catch (error) {
      await pebble.stop()
      if (!inUse(error) || attempt === 3) throw error
    }
  }
}

/**
 * `start` again on the ports it had: a client connection of a parallel test may hold one of them
 * as its local port for a moment, so EADDRINUSE is retried for up to two seconds.
 */
export async function restartOnSamePorts<T> (start: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 2000
  for (;;) {
    try {
      return await start()
    } catch (error) {
      if (!inUse(error) || Date.now() > deadline) throw error
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

export interface TrustedAnswer {
  status: number
  body: string
  /** The certificate the proxy presented, verified against `root` for `servername`. */
  certificate: PeerCertificate
}

/**
 * GET `path` over HTTPS on 127.0.0.1:`port` as a browser at https://`servername`/ would: SNI and
 * Host are the name, and the only trusted root is `root` (pebble's), so a temporary or wrong
 * certificate fails the handshake.
 */
export async function getTrusted (port: number, servername: string, root: string, path = '/'): Promise<TrustedAnswer> {
  return await new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername, ca: root, path, headers: { host: servername }, agent: false }, res => {
      const certificate = (res.socket as TLSSocket).getPeerCertificate()
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, certificate }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Every file under `dir` with its permission bits. */
export function fileModes (dir: string): Array<{ file: string, mode: number }> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map(file => ({ file, stats: statSync(join(dir, file)) }))
    .filter(({ stats }) => stats.isFile())
    .map(({ file, stats }) => ({ file, mode: stats.mode & 0o777 }))
}

/**
 * A hook as a user would write one: `set` adds the value, `clear` removes that value only (a
 * wildcard and its base name share one record name, with a value each, validated at once), and
 * exit 0 only once the provider (challtestsrv here) has taken the change. Every call is logged.
 */
export function writeDnsHook (dir: string, management: string): { hook: string, calls: () => Array<{ action: string, domain: string, record: string, value: string }> } {
  const hook = join(dir, 'dns-hook.mjs')
  const log = join(dir, 'calls.jsonl')
  const state = join(dir, 'records.json')
  writeFileSync(hook, `#!/usr/bin/env node
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
const [action, domain, record, value] = process.argv.slice(2)
appendFileSync(${JSON.stringify(log)}, JSON.stringify({ action, domain, record, value }) + '\\n')
const records = existsSync(${JSON.stringify(state)}) ? JSON.parse(readFileSync(${JSON.stringify(state)}, 'utf8')) : {}
const values = (records[record] ?? []).filter(v => v !== value)
if (action === 'set') values.push(value)
records[record] = values
writeFileSync(${JSON.stringify(state)}, JSON.stringify(records))
const post = async (path, body) => {
  const response = await fetch(${JSON.stringify(management)} + path, { method: 'POST', body: JSON.stringify(body) })
  if (!response.ok) { console.error(path, response.status); process.exit(1) }
}
await post('/clear-txt', { host: record + '.' })
for (const v of values) await post('/set-txt', { host: record + '.', value: v })
`)
  chmodSync(hook, 0o755)
  return {
    hook,
    calls: () => {
      try {
        return readFileSync(log, 'utf8').split('\n').filter(Boolean).map(line => JSON.parse(line) as { action: string, domain: string, record: string, value: string })
      } catch {
        return []
      }
    }
  }
}

/** Waits until /readyz says the CA's certificate is served. */
export async function waitIssued (t: Test, proxy: Listeners, pebble: Pebble): Promise<void> {
  let readiness: unknown
  await waitFor(async () => {
    readiness = await getJson(`${proxy.adminUrl}/readyz`)
    return (readiness as { status: number }).status === 200
  }, 30_000, 'the certificate to be issued', { intervalMs: 200, last: () => `${JSON.stringify(readiness)}\n${pebble.output()}` })
  t.pass('ready: the CA\'s certificate is served')
}

export interface DirectoryStandIn {
  /** https://127.0.0.1:<port>/dir: pebble's directory with what pebble 2.4 lacks added. */
  directory: string
  /** PEM file trusting both pebble's API and the stand-in (what ACME_CA_FILE takes). */
  caFile: string
  /** The certificate IDs asked about at renewalInfo, in order. */
  renewalInfoAsked: string[]
}

export interface DirectoryAdditions {
  /** meta.profiles, as Let's Encrypt lists them. */
  profiles?: Record<string, string>
  /** RFC 9773: answers GET <renewalInfo>/<certID>; the directory lists renewalInfo when given. */
  renewalInfo?: (certId: string) => { status: number, body: unknown, retryAfter?: string }
}

/**
 * pebble 2.4 predates ACME profiles and ARI (RFC 9773): this HTTPS server serves pebble's
 * directory with `meta.profiles` and `renewalInfo` added, and answers renewalInfo itself; every
 * other URL in the directory is still pebble's, so accounts, orders and certificates are pebble's.
 */
export async function startDirectoryStandIn (t: Test, pebble: Pebble, additions: DirectoryAdditions): Promise<DirectoryStandIn> {
  const certificate = await makeCertificate(`ca-stand-in-${randomUUID()}.test`)
  const dir = temporaryDirectory(t, 'immich-proxy-ca-stand-in-')
  const caFile = join(dir, 'ca.pem')
  writeFileSync(caFile, `${pebble.ca.trim()}\n${certificate.cert.trim()}\n`)
  const dispatcher = new Agent({ connect: { ca: pebble.ca } })
  t.teardown(async () => await dispatcher.close())
  const renewalInfoAsked: string[] = []
  let base = ''
  const server = createHttpsServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
    }
    if (req.url === '/dir') {
      request(pebble.directory, { dispatcher }).then(async response => {
        const directory = await response.body.json() as Record<string, unknown> & { meta?: Record<string, unknown> }
        answer(200, {
          ...directory,
          meta: { ...directory.meta, ...(additions.profiles === undefined ? {} : { profiles: additions.profiles }) },
          ...(additions.renewalInfo === undefined ? {} : { renewalInfo: `${base}/renewal-info` })
        })
      }, (error: Error) => answer(502, { detail: error.message }))
      return
    }
    const certId = /^\/renewal-info\/([A-Za-z0-9_.-]+)$/.exec(req.url ?? '')?.[1]
    if (certId !== undefined && additions.renewalInfo !== undefined && req.method === 'GET') {
      renewalInfoAsked.push(certId)
      const { status, body, retryAfter } = additions.renewalInfo(certId)
      answer(status, body, retryAfter === undefined ? {} : { 'retry-after': retryAfter })
      return
    }
    answer(404, { type: 'urn:ietf:params:acme:error:malformed', detail: 'not here' })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => await new Promise(resolve => server.close(resolve)))
  base = `https://127.0.0.1:${(server.address() as { port: number }).port}`
  return { directory: `${base}/dir`, caFile, renewalInfoAsked }
}
