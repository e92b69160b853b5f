// HTTP/2 streams that wait for a connection to Immich (every one of UPSTREAM_MAX_CONNECTIONS
// busy) and are cancelled by the client leave the queue: Immich never gets them, and they do
// not hold back the requests queued after them.
import t from 'tap'
import { connect } from 'node:http2'
import { Agent } from 'undici'
import { startUpstream } from './helper.js'
import { spawnServer } from './helpers/ops.js'
import { statusWith } from './helpers/access-key.js'
import { waitFor } from './helpers/wait.js'

t.test('cancelled while queued, an HTTP/2 request never reaches Immich', async t => {
  // /slow holds the one connection for 2 s, never silent for PROXY_TIMEOUT
  const upstream = await startUpstream(t, (req, res) => {
    if (req.url !== '/slow') {
      res.end('ok')
      return
    }
    res.writeHead(200)
    const timer = setInterval(() => res.write('.'), 200)
    setTimeout(() => { clearInterval(timer); res.end() }, 2000)
    res.on('close', () => clearInterval(timer))
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, TLS_SELF_SIGNED: 'true', UPSTREAM_MAX_CONNECTIONS: '1', PROXY_TIMEOUT: '10s' })
  const origin = proxy.url.replace('http:', 'https:')
  const insecure = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(async () => await insecure.close())

  const slow = statusWith(`${origin}/slow`, undefined, insecure)
  await waitFor(() => upstream.requests.length === 1, 30_000, 'the slow request to hold the connection')
  const session = connect(origin, { rejectUnauthorized: false })
  session.on('error', () => {})
  const streams = Array.from({ length: 5 }, (_, i) => session.request({ ':path': `/api/assets/${i}/thumbnail` }).on('error', () => {}))
  // every stream has reached the proxy (and its queue) once its headers were sent
  await Promise.all(streams.map(async stream => { if (stream.pending) await new Promise(resolve => stream.once('ready', resolve)) }))
  await new Promise(resolve => setTimeout(resolve, 300))
  session.destroy()

  t.equal(await slow, 200, 'the request holding the connection is answered')
  // queued after the cancelled ones: it reaches Immich after any of them would have
  t.equal(await statusWith(`${origin}/api/server/ping`, undefined, insecure), 200, 'a request after them is answered')
  t.same(upstream.requests.map(req => req.url), ['/slow', '/api/server/ping'], 'Immich got none of the cancelled requests')
})
