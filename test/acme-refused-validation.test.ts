// A validation the CA cannot complete (nothing answers where it connects) leaves the temporary
// certificate in service and says why in the log, with when it tries again. Here the proxy is
// built alone (src/build.ts, as an embedder would), which starts its own ordering once it listens.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { getTrusted, startPebble } from './helpers/pebble.js'
import { handshake } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'
import { closedPort } from './helpers/websocket.js'

const DOMAIN = 'photos.example.test'

t.test('a refused tls-alpn-01 validation: the temporary certificate stays, the log names the cause', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  // pebble validates on a port where nothing listens
  const pebble = await startPebble(t, { tlsPort: await closedPort(), httpPort: await closedPort() })
  const storage = mkdtempSync(join(tmpdir(), 'immich-proxy-acme-'))
  t.teardown(() => rmSync(storage, { recursive: true, force: true }))
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
  const [failure] = proxy.log.find(50, /^ACME: no certificate obtained/) as Array<{ err: { message: string }, retryInSeconds: number, domains: string[] }>
  t.match(failure.err.message, /Failed to connect to 127\.0\.0\.1:[0-9]+ for the tls-alpn-01 challenge/, 'the CA\'s reason is logged')
  t.equal(failure.retryInSeconds, 60, 'and when it tries again')
  t.same(failure.domains, [DOMAIN])
  t.equal((await handshake(proxy.port, { servername: DOMAIN })).fingerprint256, temporary.fingerprint256, 'the temporary certificate is still served')
  await t.rejects(getTrusted(proxy.port, DOMAIN, await pebble.root()), 'and it is not the CA\'s')
  t.equal(pebble.orders(), 1, 'one order so far')
})
