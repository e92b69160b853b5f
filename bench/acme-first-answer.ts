// `npm run bench:acme`: from starting the proxy (the bundle, as `npm start` and the image run it)
// to the first answer over a certificate a client trusts, with ACME_DOMAINS against a local ACME
// CA (pebble, validating at once: PEBBLE_VA_NOSLEEP) and, as the reference in the same run, with
// the certificate given as files (TLS_CERT_FILE, signed by a CA the client trusts). Rounds
// alternate the two; medians and spread go to bench/RESULTS-acme.md. A real CA adds its own
// validation time (Let's Encrypt: seconds) and the network; this measures the proxy's part.
// Loopback only; everything it starts is stopped when it ends.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createServer } from 'node:http'
import { generate } from 'selfsigned'
import { startPebble, type Owner } from '../test/helpers/pebble.js'
import { START_ENTRY, START_FLAGS } from '../test/helpers/start-flags.js'
import { makeCa } from '../test/helpers/tls.js'
import { closedPort } from '../test/helpers/websocket.js'

const REPO = resolve(import.meta.dirname, '..')
const DOMAIN = 'photos.example.test'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)

const cleanups: Array<() => unknown> = []
const owner: Owner = { teardown: cleanup => { cleanups.push(cleanup) } }
async function cleanUp (): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup()
  cleanups.length = 0
}

/** One GET over TLS trusting `root` only, with SNI and Host the domain; resolves false on any failure. */
async function trustedAnswer (port: number, root: string): Promise<boolean> {
  return await new Promise(resolve => {
    const req = request({ host: '127.0.0.1', port, servername: DOMAIN, ca: root, path: '/api/server/ping', headers: { host: DOMAIN }, agent: false, timeout: 2000 }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode === 200))
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

/** Starts the bundle with `env` and polls until a trusted answer; milliseconds from spawn. */
async function timeToTrustedAnswer (env: Record<string, string>, port: number, root: () => Promise<string>): Promise<number> {
  const started = performance.now()
  const child: ChildProcess = spawn(process.execPath, [...START_FLAGS, join(REPO, START_ENTRY)], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ADMIN_PORT: 'off', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  try {
    const trusted = await root()
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the proxy exited with ${child.exitCode}`)
      if (await trustedAnswer(port, trusted)) return performance.now() - started
      if (performance.now() - started > 60_000) throw new Error('no trusted answer within 60 s')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  } finally {
    child.kill('SIGKILL')
    if (child.exitCode === null) await once(child, 'exit')
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

const upstream = createServer((req, res) => res.end('{"res":"pong"}'))
upstream.listen(0, '127.0.0.1')
await once(upstream, 'listening')
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`

const acme: number[] = []
const files: number[] = []
try {
  for (let round = 1; round <= ROUNDS; round++) {
    // ACME: a fresh storage and a fresh pebble, so that every round orders
    const [port, httpPort] = [await closedPort(), await closedPort()]
    const pebble = await startPebble(owner, { httpPort, tlsPort: port })
    const storage = mkdtempSync(join(tmpdir(), 'immich-proxy-bench-acme-'))
    owner.teardown(() => rmSync(storage, { recursive: true, force: true }))
    acme.push(await timeToTrustedAnswer({
      UPSTREAM_URL: upstreamUrl,
      PORT: String(port),
      HTTP_PORT: String(httpPort),
      ACME_DOMAINS: DOMAIN,
      ACME_DIRECTORY: pebble.directory,
      ACME_CA_FILE: pebble.caFile,
      ACME_STORAGE: storage
    }, port, pebble.root))
    if (pebble.orders() !== 1) throw new Error(`round ${round}: ${pebble.orders()} orders, not 1`)
    await cleanUp()

    // the reference: a certificate from files, signed by a CA the client trusts
    const ca = await makeCa()
    const leaf = await generate([{ name: 'commonName', value: DOMAIN }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      ca: { key: ca.key, cert: ca.cert },
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: DOMAIN }] }]
    })
    const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-bench-files-'))
    owner.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'fullchain.pem'), leaf.cert)
    writeFileSync(join(dir, 'privkey.pem'), leaf.private)
    const filesPort = await closedPort()
    files.push(await timeToTrustedAnswer({
      UPSTREAM_URL: upstreamUrl, PORT: String(filesPort), TLS_CERT_FILE: join(dir, 'fullchain.pem'), TLS_KEY_FILE: join(dir, 'privkey.pem')
    }, filesPort, async () => ca.cert))
    await cleanUp()
    console.error(`round ${round}: ACME ${acme.at(-1)?.toFixed(0)} ms, files ${files.at(-1)?.toFixed(0)} ms`)
  }
} finally {
  await cleanUp()
  upstream.close()
}

const spread = (values: number[]): string => `${Math.min(...values).toFixed(0)}…${Math.max(...values).toFixed(0)}`
const report = `# Start-up to the first trusted answer

\`npm run bench:acme\` (bench/acme-first-answer.ts), ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores, ${ROUNDS} rounds alternating.
From spawning the bundle to a 200 over a certificate the client trusts (polled every 10 ms).

| certificate | median | spread |
|---|---|---|
| ACME_DOMAINS, http-01, against pebble (first start: account, order, validation, issue) | ${median(acme).toFixed(0)} ms | ${spread(acme)} ms |
| TLS_CERT_FILE (reference, same run) | ${median(files).toFixed(0)} ms | ${spread(files)} ms |
| ACME ÷ files | ${(median(acme) / median(files)).toFixed(2)}× | |

pebble validates at once (PEBBLE_VA_NOSLEEP); a public CA adds its own validation time and the network.
`
writeFileSync(join(REPO, 'bench', 'RESULTS-acme.md'), report)
console.log(report)
