// A validation the CA cannot complete (nothing answers where it connects) leaves the temporary
// certificate in service and says why in the log, with when it tries again. Here the proxy is
// built alone (src/build.ts, as an embedder would), which starts its own ordering once it listens.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { ORDERS_PER_HOUR, caFolder, explain, problemOf } from '../plugins/tls/acme.js'
import { getTrusted, startPebble } from './helpers/pebble.js'
import { handshake } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'
import { closedPort } from './helpers/websocket.js'
import { temporaryDirectory } from './helpers/ops.js'

const DOMAIN = 'photos.example.test'

t.test('a refused tls-alpn-01 validation: the temporary certificate stays, the log names the cause', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  // pebble validates on a port where nothing listens
  const pebble = await startPebble(t, { tlsPort: await closedPort(), httpPort: await closedPort() })
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  const proxy = await startProxy(t, upstream.url, {
    ACME_DOMAINS: DOMAIN,
    ACME_DIRECTORY: pebble.directory,
    ACME_CA_FILE: pebble.caFile,
    ACME_STORAGE: storage,
    LOG_LEVEL: 'warn'
  })
  const temporary = await handshake(proxy.port, { servername: DOMAIN })

  await waitFor(() => proxy.log.find(50, /^ACME: no certificate obtained/).length > 0, 20_000, 'the failure in the log',
    { intervalMs: 100, last: () => `${proxy.log.text}\n${pebble.output()}` })
  const [failure] = proxy.log.find(50, /^ACME: no certificate obtained/) as Array<{ msg: string, err: { message: string }, cause: string, problemType: string, retryInSeconds: number, domains: string[] }>
  t.match(failure.err.message, /Failed to connect to 127\.0\.0\.1:[0-9]+ for the tls-alpn-01 challenge/, 'the CA\'s reason is logged')
  t.equal(failure.cause, 'connection', 'named as a connection failure')
  t.equal(failure.problemType, 'unauthorized', 'the CA\'s problem type is logged (pebble types it unauthorized, Let\'s Encrypt connection)')
  t.match(failure.msg, /forward port 443 to this proxy's PORT/, 'with what to do about it')
  t.equal(failure.retryInSeconds, 60, 'and when it tries again')
  t.same(failure.domains, [DOMAIN])
  t.equal((await handshake(proxy.port, { servername: DOMAIN })).fingerprint256, temporary.fingerprint256, 'the temporary certificate is still served')
  await t.rejects(getTrusted(proxy.port, DOMAIN, await pebble.root()), 'and it is not the CA\'s')
  t.equal(pebble.orders(), 1, 'one order so far')
})

t.test('at most ORDERS_PER_HOUR orders per name in an hour, counted across restarts', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const pebble = await startPebble(t, { tlsPort: await closedPort(), httpPort: await closedPort() })
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  // what earlier runs (a crash-looping container) left: the oldest 50 minutes ago
  const folder = caFolder({ storage, directory: pebble.directory })
  mkdirSync(folder, { recursive: true })
  const oldest = Date.now() - 50 * 60_000
  writeFileSync(join(folder, 'orders.json'), JSON.stringify(Array.from({ length: ORDERS_PER_HOUR }, (_, i) => ({ at: oldest + i * 60_000, domains: [DOMAIN] }))))
  const proxy = await startProxy(t, upstream.url, {
    ACME_DOMAINS: `${DOMAIN},other.example.test`,
    ACME_DIRECTORY: pebble.directory,
    ACME_CA_FILE: pebble.caFile,
    ACME_STORAGE: storage,
    LOG_LEVEL: 'warn'
  })
  await waitFor(() => proxy.log.find(40, /orders for these names in the last hour/).length > 0, 10_000, 'the wait in the log', { last: () => proxy.log.text })
  const [wait] = proxy.log.find(40, /orders for these names in the last hour/) as Array<{ retryInSeconds: number }>
  t.ok(wait.retryInSeconds > 9 * 60 && wait.retryInSeconds <= 10 * 60, `the next order waits until the oldest is an hour old (${wait.retryInSeconds} s)`)
  t.equal(pebble.orders(), 0, 'no order went out')
})

t.test('failures are explained from the CA\'s problem documents', async t => {
  const rateLimited = problemOf(429, { type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2030-01-02 03:04:05 UTC: see https://letsencrypt.org/docs/rate-limits/' }, undefined)
  t.same(rateLimited, { type: 'rateLimited', detail: rateLimited?.detail, retryAt: Date.parse('2030-01-02T03:04:05Z') }, 'a rate limit, with the time it names')
  const header = problemOf(429, { type: 'urn:ietf:params:acme:error:rateLimited', detail: 'slow down' }, '120')
  t.ok(header?.retryAt !== undefined && Math.abs(header.retryAt - Date.now() - 120_000) < 5_000, 'Retry-After in seconds')
  t.same(problemOf(200, { status: 'invalid', challenges: [{ type: 'http-01' }, { error: { type: 'urn:ietf:params:acme:error:dns', detail: 'DNS problem: NXDOMAIN looking up A for photos.example.org' } }] }, undefined),
    { type: 'dns', detail: 'DNS problem: NXDOMAIN looking up A for photos.example.org', retryAt: undefined }, 'an invalid authorization\'s challenge error')
  t.equal(problemOf(200, { status: 'valid' }, undefined), undefined, 'no problem in a good answer')

  const cases: Array<[string | undefined, string, string, RegExp]> = [
    ['rateLimited', '', 'rate-limit', /letsencrypt-staging/],
    ['caa', 'CAA record for photos.example.org prevents issuance', 'caa', /CAA 0 issue "letsencrypt\.org"/],
    ['dns', 'DNS problem: NXDOMAIN', 'dns', /A \(and AAAA, if any\) record/],
    ['connection', 'Timeout during connect (likely firewall problem)', 'connection', /forward port 80 to this proxy's HTTP_PORT/],
    ['unauthorized', 'Invalid response from http://photos.example.org/.well-known/acme-challenge/x: 404', 'wrong-answer', /something other than this proxy/],
    ['externalAccountRequired', 'EAB required', 'account', /external account binding/],
    ['serverInternal', 'oops', 'other', /retries on its own/]
  ]
  for (const [type, detail, cause, advice] of cases) {
    const explained = explain(new Error(detail), { type, detail }, 'http-01')
    t.equal(explained.cause, cause, `${type ?? ''}: ${cause}`)
    t.match(explained.advice, advice)
  }
  t.equal(explain(new Error('connect ECONNREFUSED 127.0.0.1:14000'), undefined, 'http-01').cause, 'ca-unreachable', 'no answer from the CA at all')
})
