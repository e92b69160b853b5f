import t from 'tap'
import { once } from 'node:events'
import { startProxy, startUpstream } from './helper.js'
import { h2Request, h2Session, makeCertificate, writeCertificateFiles } from './helpers/tls.js'
import { within } from './helpers/wait.js'

// A browser keeps its HTTP/2 session open long after the page loaded. On shutdown the proxy must
// not wait for it (Node's server.close() would, until the session's 72 s idle timeout, far past
// SHUTDOWN_TIMEOUT): it sends GOAWAY, lets the streams in flight finish, and closes.
t.test('closing sends GOAWAY to HTTP/2 sessions, finishes streams in flight and does not wait for idle ones', async t => {
  const certificate = await makeCertificate()
  const files = writeCertificateFiles(t.testdir(), certificate)
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url === '/api/assets/1/original') setTimeout(() => res.end('the whole original'), 1000)
    else res.end('ok')
  })
  const proxy = await startProxy(t, upstream.url, { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile })
  const idle = await h2Session(t, proxy.url, certificate.cert)
  t.equal((await h2Request(idle, { ':method': 'GET', ':path': '/api/server/ping' })).status, 200)
  const busy = await h2Session(t, proxy.url, certificate.cert)
  const download = h2Request(busy, { ':method': 'GET', ':path': '/api/assets/1/original' })
  await within((async () => { while (upstream.requests.length < 2) await new Promise(resolve => setTimeout(resolve, 10)) })(), 5000, 'the download to reach Immich')

  const goaways = [once(idle, 'goaway'), once(busy, 'goaway')]
  await within(proxy.app.close(), 10_000, 'the proxy to close')
  const [idleGoaway, busyGoaway] = await within(Promise.all(goaways), 1000, 'GOAWAY on both sessions')
  t.equal(idleGoaway[0], 0, 'GOAWAY with NO_ERROR to the idle session')
  t.equal(busyGoaway[0], 0, 'and to the busy one')
  const finished = await download
  t.equal(finished.status, 200)
  t.equal(finished.body.toString(), 'the whole original', 'the stream in flight finished whole')
  await within(Promise.all([idle.closed ? Promise.resolve() : once(idle, 'close'), busy.closed ? Promise.resolve() : once(busy, 'close')]), 5000, 'both sessions to end')
})
