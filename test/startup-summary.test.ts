// At start the proxy logs one line saying what runs (where Immich is, TLS, HTTP/2, whether the
// access key is on, the body limit, which listener is which; never a key), then asks Immich
// once whether it answers: info when it does, a warning naming UPSTREAM_URL when it does not,
// the proxy serving all the while.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startUpstream } from './helper.js'
import { spawnServer, type LogLine } from './helpers/ops.js'
import { makeCa, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { closedPort } from './helpers/websocket.js'
import { waitFor } from './helpers/wait.js'
import { STARTUP_CHECK_USER_AGENT } from '../src/immich-ping.js'

const summaries = (lines: LogLine[]): unknown[] => lines.map(line => line.msg).filter(msg => typeof msg === 'string' && msg.startsWith('immich-proxy started: '))

t.test('self-signed TLS, a redirect listener and access keys: one line says so, and Immich answers', async t => {
  const checks: Array<string | undefined> = []
  const upstream = await startUpstream(t, (req, res) => {
    if (req.headers['user-agent'] === STARTUP_CHECK_USER_AGENT) checks.push(`${req.method ?? ''} ${req.url ?? ''}`)
    res.end('{"res":"pong"}')
  }, { startupCheck: 'handler' })
  const httpPort = await closedPort()
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, TLS_SELF_SIGNED: 'true', HTTP_PORT: String(httpPort), ACCESS_KEY: 'k3y-one,k3y-two', BODY_LIMIT: '10m' })
  t.same(summaries(proxy.lines), [
    `immich-proxy started: Immich at ${upstream.url}; TLS self-signed, HTTP/2 on, access key on, body limit 10M; ` +
    `main https://127.0.0.1:${proxy.port}, redirect http://127.0.0.1:${httpPort}, admin http://127.0.0.1:${proxy.adminPort}; settings from the environment`
  ], 'one summary line')
  await waitFor(() => proxy.lines.some(line => line.msg === `Immich answers at UPSTREAM_URL=${upstream.url}`), 10_000, 'the check\'s line', { last: proxy.output })
  t.equal(proxy.lines.find(line => line.msg === `Immich answers at UPSTREAM_URL=${upstream.url}`)?.level, 30, 'at info')
  t.same(checks, ['GET /api/server/ping'], 'one GET /api/server/ping, told apart by its User-Agent')
  t.notMatch(proxy.output(), /k3y-/, 'no key in the log')
})

t.test('TLS files, a client CA, HTTP/2 off, a key file, no body limit, and Immich down: a warning naming UPSTREAM_URL, the proxy serving', async t => {
  const dir = t.testdir()
  const files = writeCertificateFiles(dir, await makeCertificate('localhost'))
  writeFileSync(join(dir, 'keys'), 's3cret-from-file\n')
  writeFileSync(join(dir, 'clients-ca.pem'), (await makeCa()).cert)
  const upstream = `http://127.0.0.1:${await closedPort()}`
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream, TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, HTTP2: 'false', TLS_CLIENT_CA_FILE: join(dir, 'clients-ca.pem'), ACCESS_KEY_FILE: join(dir, 'keys'), BODY_LIMIT: '0', LOAD_SHED_EVENT_LOOP_DELAY: '0' })
  t.same(summaries(proxy.lines), [
    `immich-proxy started: Immich at ${upstream}; TLS files, HTTP/2 off, client certificates on, access key on, body limit none; ` +
    `main https://127.0.0.1:${proxy.port}, admin http://127.0.0.1:${proxy.adminPort}; settings from the environment`
  ])
  const warning = `Immich does not answer GET /api/server/ping at UPSTREAM_URL=${upstream} (ECONNREFUSED); requests get 502 until it does. Is UPSTREAM_URL right, and is Immich running?`
  await waitFor(() => proxy.lines.some(line => line.msg === warning), 10_000, 'the check\'s warning', { last: proxy.output })
  t.equal(proxy.lines.find(line => line.msg === warning)?.level, 40, 'a warning, not a failure')
  t.notMatch(proxy.output(), /s3cret-from-file/, 'nothing of the key file in the log')

  const insecure = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(async () => await insecure.close())
  const response = await request(`https://127.0.0.1:${proxy.port}/api/server/ping`, { dispatcher: insecure, headers: { 'x-access-key': 's3cret-from-file' } })
  await response.body.dump()
  t.equal(response.statusCode, 502, 'the proxy runs and answers 502 while Immich is away')
  t.equal(proxy.child.exitCode, null)
})

t.test('plain HTTP, no key, and an upstream that is not Immich: the warning says what it answered', async t => {
  const upstream = await startUpstream(t, (req, res) => { res.statusCode = 404; res.end('not here') }, { startupCheck: 'handler' })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  t.same(summaries(proxy.lines), [
    `immich-proxy started: Immich at ${upstream.url}; TLS off, HTTP/2 off, access key off, body limit 50000M; ` +
    `main http://127.0.0.1:${proxy.port}, admin http://127.0.0.1:${proxy.adminPort}; settings from the environment`
  ])
  await waitFor(() => proxy.lines.some(line => String(line.msg).startsWith('Immich does not answer')), 10_000, 'the check\'s warning', { last: proxy.output })
  t.match(proxy.output(), `Immich does not answer GET /api/server/ping at UPSTREAM_URL=${upstream.url} (status 404)`)
})

t.test('an upstream that answers 200 with an endless body: read no further than a little, and said so', async t => {
  let closed = false
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024, 'x')), 5)
    res.on('close', () => { clearInterval(timer); closed = true })
  }, { startupCheck: 'handler' })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url })
  await waitFor(() => proxy.lines.some(line => String(line.msg).startsWith('Immich does not answer')), 10_000, 'the check\'s warning', { last: proxy.output })
  t.match(proxy.output(), `Immich does not answer GET /api/server/ping at UPSTREAM_URL=${upstream.url} (status 200, but not Immich's pong)`)
  await waitFor(() => closed, 5000, 'the check to let go of the answer')
  t.ok(closed, 'the check closed the answer it did not need')
})
