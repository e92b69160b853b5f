// The image's entrypoint (deploy/docker-entrypoint.sh) with certbot's files as certbot leaves them:
// privkey.pem root's, 0600, in root-only folders, live/<domain>/*.pem symlinks into
// ../../archive/. The proxy must serve them as an unprivileged user, follow a renewal without a
// restart, and stop on SIGTERM with nothing left behind. Runs as root, as the container starts
// (`npm run test:root`, which .ci/run calls; `npm test` does not, so it passes without root);
// `nobody` stands in for the image's `node` user.
import t from 'tap'
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startUpstream } from '../helper.js'
import { root, spawnServer } from '../helpers/ops.js'
import { handshake, makeCertificate, type TestCertificate } from '../helpers/tls.js'
import { waitFor, within } from '../helpers/wait.js'

const entrypoint = join(root, 'deploy/docker-entrypoint.sh')

/** The entrypoint before the server command, as the image runs it. */
function imageCommand (command: string[]): string[] {
  return [entrypoint, ...command]
}
const NOBODY = 65534

function uidOf (pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
}

/** Processes whose command line or environment names `marker` (a test's own folder). */
function processesNaming (marker: string): number[] {
  return readdirSync('/proc').filter(name => /^\d+$/.test(name)).map(Number).filter(pid => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').includes(marker) || readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(marker)
    } catch {
      return false // gone meanwhile
    }
  })
}

/** /etc/letsencrypt as certbot lays it out, for one domain. */
function letsencrypt (dir: string, domain: string): { live: string, install: (n: number, pair: TestCertificate) => void } {
  const archive = join(dir, 'archive', domain)
  const live = join(dir, 'live', domain)
  mkdirSync(archive, { recursive: true })
  mkdirSync(live, { recursive: true })
  chmodSync(join(dir, 'archive'), 0o700)
  chmodSync(join(dir, 'live'), 0o700)
  return {
    live,
    install (n, pair) {
      writeFileSync(join(archive, `fullchain${n}.pem`), pair.cert, { mode: 0o644 })
      writeFileSync(join(archive, `privkey${n}.pem`), pair.key, { mode: 0o600 })
      for (const name of ['fullchain', 'privkey']) {
        // a new link renamed over the old one, as certbot does
        symlinkSync(join('..', '..', 'archive', domain, `${name}${n}.pem`), join(live, `${name}.pem.new`))
        renameSync(join(live, `${name}.pem.new`), join(live, `${name}.pem`))
      }
    }
  }
}

t.test('a root-only certbot key is served by an unprivileged proxy, renewals included', async t => {
  t.equal(process.getuid?.(), 0, 'run as root, as the container starts')
  const [a, b] = await Promise.all([makeCertificate('a.immich.test'), makeCertificate('b.immich.test')])
  const dir = t.testdir()
  const certbot = letsencrypt(join(dir, 'letsencrypt'), 'immich.test')
  certbot.install(1, a)
  const copies = join(dir, 'run', 'tls')

  const upstream = await startUpstream(t, (req, res) => res.end(`immich saw ${String(req.url)}`))
  const proxy = await spawnServer(t, {
    UPSTREAM_URL: upstream.url,
    // the machine running the tests may be busy: no load shedding
    LOAD_SHED_EVENT_LOOP_DELAY: '0',
    TLS_CERT_FILE: join(certbot.live, 'fullchain.pem'),
    TLS_KEY_FILE: join(certbot.live, 'privkey.pem'),
    IMMICH_PROXY_USER: 'nobody',
    IMMICH_PROXY_TLS_COPIES: copies,
    IMMICH_PROXY_TLS_POLL: '1'
  }, { wrap: imageCommand })
  const pid = proxy.child.pid as number

  t.equal(uidOf(pid), NOBODY, 'the proxy runs as the unprivileged user')
  t.match(readFileSync(`/proc/${pid}/cmdline`, 'latin1'), /immich-proxy\.cjs/, 'and is the process started (exec), which gets the signals')
  t.match(proxy.output(), /privkey\.pem is not readable by nobody: serving copies in /, 'says why it copies')
  const key = statSync(join(certbot.live, 'privkey.pem'))
  t.same([key.uid, key.mode & 0o777], [0, 0o600], 'certbot\'s key left as it was')
  const copy = statSync(join(copies, 'privkey.pem'))
  t.same([copy.uid, copy.mode & 0o777], [NOBODY, 0o600], 'the copy is the user\'s alone')

  t.equal((await handshake(proxy.port)).fingerprint256, a.fingerprint256, 'certificate 1 served')
  const dispatcher = new Agent({ connect: { ca: [a.cert, b.cert], servername: 'localhost' } })
  t.teardown(() => dispatcher.close())
  const response = await request(`https://127.0.0.1:${proxy.port}/api/server/ping`, { dispatcher })
  t.same([response.statusCode, await response.body.text()], [200, 'immich saw /api/server/ping'], 'proxied over HTTPS')

  certbot.install(2, b)
  const written = Date.now()
  await waitFor(async () => (await handshake(proxy.port)).fingerprint256 === b.fingerprint256, 30_000, 'B to be served', { intervalMs: 200 })
  const tookMs = Date.now() - written
  t.pass(`the renewed certificate is served ${tookMs} ms after the symlink swap, no restart`)
  t.equal(uidOf(pid), NOBODY, 'by the same process')
  t.match(proxy.output(), /changed: copied again/)

  proxy.child.kill('SIGTERM')
  t.same(await within(proxy.exited, 15_000, 'the exit after SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit code 0')
  // the copy loop looks for the proxy every IMMICH_PROXY_TLS_POLL seconds
  await waitFor(() => processesNaming(dir).length === 0, 15_000, `no process left naming ${dir}`, { last: () => processesNaming(dir).join(', ') })
  t.pass('no process left behind')
})

t.test('a key the user can read is used where it is, by the unprivileged proxy', async t => {
  const pair = await makeCertificate()
  const dir = t.testdir({ certs: { 'fullchain.pem': pair.cert, 'privkey.pem': pair.key } })
  chmodSync(join(dir, 'certs', 'privkey.pem'), 0o644)
  const copies = join(dir, 'run', 'tls')
  const upstream = await startUpstream(t, (req, res) => res.end('ok'))
  const proxy = await spawnServer(t, {
    UPSTREAM_URL: upstream.url,
    LOAD_SHED_EVENT_LOOP_DELAY: '0',
    TLS_CERT_FILE: join(dir, 'certs', 'fullchain.pem'),
    TLS_KEY_FILE: join(dir, 'certs', 'privkey.pem'),
    IMMICH_PROXY_USER: 'nobody',
    IMMICH_PROXY_TLS_COPIES: copies
  }, { wrap: imageCommand })
  t.equal(uidOf(proxy.child.pid as number), NOBODY, 'the proxy runs as the unprivileged user')
  t.equal((await handshake(proxy.port)).fingerprint256, pair.fingerprint256, 'the certificate served')
  t.throws(() => statSync(copies), { code: 'ENOENT' }, 'nothing copied')
  t.notMatch(proxy.output(), /entrypoint/, 'nothing said')
  proxy.child.kill('SIGTERM')
  t.same(await within(proxy.exited, 15_000, 'the exit after SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit code 0')
  t.same(processesNaming(dir), [], 'no process left behind')
})
