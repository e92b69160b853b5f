// The HTTP_PORT listener sends every request to HTTPS, where the client repeats it with its body
// (308). The body is never invited (no 100 Continue), read or judged here: a redirect does not
// depend on it, and a client told to wait for a 10 MB upload's refusal would wait for nothing.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { startUpstream } from './helper.js'
import { startRedirectListener } from './helpers/tls.js'
import { within } from './helpers/wait.js'

async function setUp (t: Test, env: Record<string, string> = {}) {
  const upstream = await startUpstream(t, (req, res) => res.end('{"api":{"endpoint":"/api"}}'))
  const listener = await startRedirectListener(t, upstream.url, { TLS_SELF_SIGNED: 'true', HTTP_PORT: '8080', ...env })
  return { upstream, port: listener.port }
}

/**
 * Sends `head` and `bodyPart` (some, all or none of the announced body) on a fresh connection: resolves
 * with what came back once the server closes. A listener still waiting for the body fails the
 * test (and the connection is dropped, so that the listener can close).
 */
async function exchange (port: number, head: string, bodyPart = ''): Promise<string> {
  const socket = connect(port, '127.0.0.1', () => socket.write(head + bodyPart))
  let response = ''
  socket.on('data', (data: Buffer) => { response += data.toString('latin1') })
  socket.on('error', () => {})
  try {
    await within(once(socket, 'close'), 10_000, 'the answer and the close')
  } finally {
    socket.destroy()
  }
  return response
}

function headOf (response: string): string {
  return response.slice(0, response.indexOf('\r\n\r\n'))
}

const TEN_MB = 10 * 1024 * 1024

t.test('an upload announced with Expect: 100-continue gets 308 without an invitation, and the connection closes', async t => {
  const { upstream, port } = await setUp(t, { HTTPS_REDIRECT_PORT: '8443' })
  const response = await exchange(port, 'POST /api/assets HTTP/1.1\r\nHost: immich.test:8080\r\n' +
    `Expect: 100-continue\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${TEN_MB}\r\n\r\n`)
  t.notMatch(response, /100 Continue/, 'the body is not invited')
  t.match(response, /^HTTP\/1\.1 308 /, 'the first and only answer is the redirect')
  t.match(headOf(response), /\r\nlocation: https:\/\/immich\.test:8443\/api\/assets(\r\n|$)/i)
  t.match(headOf(response), /\r\nconnection: close(\r\n|$)/i, 'the client is told not to send the body on this connection')
  t.equal(upstream.requests.length, 0)
})

t.test('bodies that Fastify would refuse or parse get 308 all the same, unread', async t => {
  const { upstream, port } = await setUp(t)
  const cases: Array<{ what: string, head: string, body?: string }> = [
    { what: 'invalid JSON', head: 'Content-Type: application/json\r\nContent-Length: 9', body: '{"a": nop' },
    { what: 'an octet stream in chunks, not finished', head: 'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked', body: '4\r\nabcd\r\n' },
    { what: 'a form', head: 'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7', body: 'a=1&b=2' },
    { what: 'text over 1 MiB, announced only', head: `Content-Type: text/plain\r\nContent-Length: ${2 * 1024 * 1024}` },
    { what: 'a body with no content type', head: `Content-Length: ${TEN_MB}` },
    { what: 'a media type Fastify cannot parse', head: 'Content-Type: not a media type\r\nContent-Length: 3', body: 'abc' }
  ]
  for (const { what, head, body } of cases) {
    const response = await exchange(port, `POST /api/assets?x=1 HTTP/1.1\r\nHost: photos.example.org\r\n${head}\r\n\r\n`, body)
    t.match(response, /^HTTP\/1\.1 308 /, what)
    t.match(headOf(response), /\r\nlocation: https:\/\/photos\.example\.org\/api\/assets\?x=1(\r\n|$)/i, `${what}: Location`)
    t.match(headOf(response), /\r\nconnection: close(\r\n|$)/i, `${what}: the connection ends with the unread body`)
  }
  t.equal(upstream.requests.length, 0)
})

t.test('requests without a body keep their connection: one connection carries two redirects', async t => {
  const { port } = await setUp(t)
  const response = await exchange(port,
    'GET /a HTTP/1.1\r\nHost: photos.example.org\r\n\r\n' +
    'DELETE /b HTTP/1.1\r\nHost: photos.example.org\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  const answers = response.match(/HTTP\/1\.1 308 /g) ?? []
  t.equal(answers.length, 2)
  t.match(response, /\r\nlocation: https:\/\/photos\.example\.org\/a\r\n[^]*\r\nlocation: https:\/\/photos\.example\.org\/b\r\n/i)
  t.notMatch(headOf(response), /\r\nconnection: close/i, 'the first answer leaves the connection open')
})

t.test('the ACME challenge path answers without reading a body either', async t => {
  const { port } = await setUp(t)
  const response = await exchange(port, 'POST /.well-known/acme-challenge/token HTTP/1.1\r\nHost: photos.example.org\r\n' +
    `Expect: 100-continue\r\nContent-Type: application/octet-stream\r\nContent-Length: ${TEN_MB}\r\n\r\n`)
  t.notMatch(response, /100 Continue/)
  t.match(response, /^HTTP\/1\.1 404 /)
  t.notMatch(headOf(response), /\r\nlocation:/i)
})

t.test('with an access key, uploads are still redirected unread and the gate stays where it was', async t => {
  const { upstream, port } = await setUp(t, { ACCESS_KEY: 'k' })
  const upload = await exchange(port, 'POST /api/assets HTTP/1.1\r\nHost: photos.example.org\r\n' +
    `Expect: 100-continue\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${TEN_MB}\r\n\r\n`)
  t.notMatch(upload, /100 Continue/)
  t.match(upload, /^HTTP\/1\.1 308 /, 'a redirect reveals nothing: no key is asked for')

  // the discovery document passes the gate without a key; a guarded neighbour does not
  const discovery = await exchange(port, 'GET /.well-known/immich HTTP/1.1\r\nHost: photos.example.org\r\nConnection: close\r\n\r\n')
  t.match(discovery, /^HTTP\/1\.1 200 /)
  // the router takes this spelling to the same route; the gate does not open for it
  const refused = await exchange(port, 'GET /.well-known/%69mmich HTTP/1.1\r\nHost: photos.example.org\r\nConnection: close\r\n\r\n')
  t.match(refused, /^HTTP\/1\.1 403 /)
  t.equal(upstream.requests.length, 1, 'only the discovery document reached Immich')
})

t.test('a client that sends its body anyway still gets the redirect', async t => {
  const { port } = await setUp(t)
  const response = await exchange(port, 'PUT /api/assets/1/original HTTP/1.1\r\nHost: photos.example.org\r\n' +
    'Content-Type: image/jpeg\r\nContent-Length: 65536\r\n\r\n', 'x'.repeat(65536))
  t.match(response, /^HTTP\/1\.1 308 /)
  t.match(headOf(response), /\r\nconnection: close(\r\n|$)/i)
})
