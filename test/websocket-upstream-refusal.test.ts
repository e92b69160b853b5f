import t from 'tap'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Test } from 'tap'
import WebSocket from 'ws'
import { startProxy, startUpstream, text } from './helper.js'
import { closedPort, startWsUpstream } from './helpers/websocket.js'
import { within } from './helpers/wait.js'

const path = '/api/socket.io/?EIO=4&transport=websocket'

/** Opens a client that must be refused: resolves with the HTTP response it got instead of a 101. */
async function refusal (t: Test, url: string): Promise<{ status: number, headers: IncomingMessage['headers'], body: string }> {
  const client = new WebSocket(url)
  t.teardown(() => client.terminate())
  let upgraded = false
  client.on('upgrade', () => { upgraded = true })
  client.on('error', () => {})
  const [, response] = await within(once(client, 'unexpected-response'), 10_000, 'the refusal') as [unknown, IncomingMessage]
  const body = await text(response)
  t.equal(upgraded, false, 'no 101 came first')
  return { status: response.statusCode ?? 0, headers: response.headers, body }
}

t.test('an unreachable upstream refuses the upgrade with 502, never a 101', async t => {
  const port = await closedPort()
  const proxy = await startProxy(t, `http://127.0.0.1:${port}`)
  const { status, headers, body } = await refusal(t, `ws://127.0.0.1:${proxy.port}${path}`)
  t.equal(status, 502)
  t.match(headers['content-type'], /^application\/json/)
  t.match(JSON.parse(body), { statusCode: 502, error: 'Bad Gateway', message: String })
  t.notMatch(body, String(port), 'the body does not name the upstream address')
})

t.test('an upstream silent past PROXY_TIMEOUT refuses the upgrade with 504', async t => {
  const upstream = await startWsUpstream(t, {
    beforeUpgrade: async (req, socket) => {
      await once(socket, 'close')
      return false
    }
  })
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '500ms' })
  const { status, body } = await refusal(t, `ws://127.0.0.1:${proxy.port}${path}`)
  t.equal(status, 504)
  t.match(JSON.parse(body), { statusCode: 504, error: 'Gateway Timeout' })
})

t.test('Immich refusing the upgrade: the client gets its status and body', async t => {
  const upstream = await startWsUpstream(t, {
    beforeUpgrade: (req, socket) => {
      const body = '{"message":"Invalid user token"}'
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Immich-Reason: token\r\n\r\n${body}`)
      return false
    }
  })
  const proxy = await startProxy(t, upstream.url)
  const { status, headers, body } = await refusal(t, `ws://127.0.0.1:${proxy.port}${path}`)
  t.equal(status, 400)
  t.equal(headers['x-immich-reason'], 'token')
  t.equal(body, '{"message":"Invalid user token"}')
})

t.test('an upstream that does not do WebSockets on that path: its 404 reaches the client', async t => {
  // no 'upgrade' listener: Node hands the upgrade request to the ordinary request handler
  const upstream = await startUpstream(t, (req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Cannot GET /nope</h1>')
  })
  const proxy = await startProxy(t, upstream.url)
  const { status, body } = await refusal(t, `ws://127.0.0.1:${proxy.port}/nope`)
  t.equal(status, 404)
  t.equal(body, '<h1>Cannot GET /nope</h1>')
  t.equal(upstream.requests[0].headers.upgrade, 'websocket', 'it was the upgrade that reached Immich')
})
