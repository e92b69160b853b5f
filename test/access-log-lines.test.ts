// The access log as an operator reads it in `docker logs`: the real entry point's stdout, one
// JSON line per request and one per WebSocket, with the figures named in the README and no
// credential anywhere, not even at LOG_LEVEL=trace.
import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { logged, spawnServer, type LogLine } from './helpers/ops.js'
import { openClient, startWsUpstream } from './helpers/websocket.js'
import { waitFor, within } from './helpers/wait.js'

const SECRETS = {
  shareKey: 'share-key-Qw8vLp2x',
  token: 'query-token-Rt5mKd9z',
  bearer: 'bearer-Yh3nBc7s',
  cookie: 'session-cookie-Uj6xWa4e',
  apiKey: 'api-key-Ik2pZr8q',
  accessKey: 'access-key-Ol9sVf1t',
  setCookie: 'set-cookie-Pe4gHn6m'
}

t.test('one line per request and per WebSocket, secrets masked or absent', async t => {
  const upstream = await startWsUpstream(t)
  upstream.server.removeAllListeners('request')
  upstream.server.on('request', (req, res) => {
    req.resume()
    req.on('end', () => {
      res.setHeader('set-cookie', `immich_access_token=${SECRETS.setCookie}; HttpOnly`)
      res.end(req.url === '/api/assets' ? '{"id":"1"}' : '{"res":"pong"}')
    })
  })
  const proxy = await spawnServer(t, { UPSTREAM_URL: upstream.url, LOG_LEVEL: 'trace', ACCESS_KEY: SECRETS.accessKey })
  const credentials = {
    authorization: `Bearer ${SECRETS.bearer}`,
    cookie: `immich_access_token=${SECRETS.cookie}`,
    'x-api-key': SECRETS.apiKey,
    'x-access-key': SECRETS.accessKey
  }

  const ping = await request(`${proxy.url}/api/server/ping?key=${SECRETS.shareKey}&size=preview&token=${SECRETS.token}`, { headers: credentials })
  t.equal(ping.statusCode, 200)
  await ping.body.dump()
  const upload = await request(`${proxy.url}/api/assets`, { method: 'POST', headers: credentials, body: Buffer.alloc(50_000, 'u') })
  t.equal(upload.statusCode, 200)
  await upload.body.dump()
  const refused = await request(`${proxy.url}/api/albums`, { headers: { ...credentials, 'x-access-key': 'wrong' } })
  t.equal(refused.statusCode, 403)
  await refused.body.dump()

  const ws = await openClient(t, `ws://127.0.0.1:${proxy.port}/api/socket.io/?EIO=4&transport=websocket&token=${SECRETS.token}`, [], { headers: credentials })
  ws.send('hello')
  await within(once(ws, 'message'), 5000, 'the echo')
  ws.close()
  await waitFor(() => logged(proxy.lines, 'websocket').length === 1, 5000, 'the websocket line')

  const requests = logged(proxy.lines, 'request')
  t.equal(requests.length, 3, 'one line per request')
  const [pingLine, uploadLine, refusedLine] = requests
  t.match(pingLine, {
    level: 30,
    method: 'GET',
    path: '/api/server/ping?key=[REDACTED]&size=preview&token=[REDACTED]',
    status: 200,
    client: '127.0.0.1'
  })
  t.match(uploadLine, { method: 'POST', path: '/api/assets', status: 200, client: '127.0.0.1' })
  t.match(refusedLine, { method: 'GET', path: '/api/albums', status: 403, client: '127.0.0.1' })
  t.notOk('upstreamMs' in refusedLine, 'a refused request never went to Immich')
  for (const line of [pingLine, uploadLine]) {
    t.type(line.upstreamMs, 'number')
    t.ok((line.upstreamMs as number) <= (line.durationMs as number), `Immich's time ${String(line.upstreamMs)} ms within the request's ${String(line.durationMs)} ms`)
  }
  t.ok((uploadLine.bytesIn as number) >= 50_000 && (uploadLine.bytesIn as number) < 51_000, `upload bytesIn ${String(uploadLine.bytesIn)}`)
  t.ok((pingLine.bytesOut as number) > 14 && (pingLine.bytesOut as number) < 1000, `ping bytesOut ${String(pingLine.bytesOut)}`)
  for (const line of requests) {
    t.type(line.durationMs, 'number')
    t.type(line.bytesIn, 'number')
    t.type(line.bytesOut, 'number')
  }
  t.equal(new Set(requests.map(line => line.reqId)).size, 3, 'each line is its own request')

  const [wsLine] = logged(proxy.lines, 'websocket')
  t.match(wsLine, {
    method: 'GET',
    path: '/api/socket.io/?EIO=4&transport=websocket&token=[REDACTED]',
    status: 101,
    client: '127.0.0.1'
  })
  // "hello" out and back, and the close frames: a few dozen bytes each way
  t.ok((wsLine.bytesIn as number) > 5 && (wsLine.bytesIn as number) < 100, `websocket bytesIn ${String(wsLine.bytesIn)}`)
  t.ok((wsLine.bytesOut as number) > 5 && (wsLine.bytesOut as number) < 100, `websocket bytesOut ${String(wsLine.bytesOut)}`)
  t.type(wsLine.durationMs, 'number')
  t.type(wsLine.reqId, 'string', 'the websocket line names its request like the others')
  t.notOk(requests.some(line => line.reqId === wsLine.reqId), 'an id of its own')

  proxy.child.kill('SIGTERM')
  t.same(await within(proxy.exited, 10_000, 'the exit'), { code: 0, signal: null })
  const output = proxy.output()
  t.ok(proxy.lines.every((line: LogLine) => !('text' in line)), 'every stdout line is JSON')
  for (const [name, secret] of Object.entries(SECRETS)) {
    t.notOk(output.includes(secret), `${name} appears nowhere in the output`)
  }
})
