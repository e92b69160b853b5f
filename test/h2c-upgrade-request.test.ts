// `curl --http2` on a plain-http URL asks to upgrade to h2c. Immich (a plain HTTP/1.1 server)
// ignores the offer and answers normally; the proxy must relay that answer, not fail with 500.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { rawExchange, startProxy, startUpstream, text } from './helper.js'

const run = promisify(execFile)

t.test('an Upgrade: h2c request gets the answer Immich gives it', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ res: 'pong' }))
  })
  const proxy = await startProxy(t, upstream.url)

  const response = await rawExchange(proxy.port, [
    'GET /api/server/ping HTTP/1.1',
    'Host: immich.test',
    'Connection: Upgrade, HTTP2-Settings, close',
    'Upgrade: h2c',
    'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA',
    'X-Api-Key: k1',
    '', ''
  ].join('\r\n'))
  t.match(response, /^HTTP\/1\.1 200 /)
  t.ok(response.endsWith('{"res":"pong"}'), 'the body Immich sent')
  t.equal(upstream.requests.length, 1)
  t.equal(upstream.requests[0].url, '/api/server/ping')
  t.equal(upstream.requests[0].headers['x-api-key'], 'k1')
  t.equal(upstream.requests[0].headers['x-forwarded-for'], '127.0.0.1')
})

t.test('curl --http2 over plain http works through the proxy', async t => {
  const upstream = await startUpstream(t, (req, res) => res.end('pong'))
  const proxy = await startProxy(t, upstream.url)

  const { stdout } = await run('curl', ['--silent', '--show-error', '--http2', '--max-time', '20', '--write-out', '\n%{http_code} %{http_version}', `${proxy.url}/api/server/ping`])
  t.equal(stdout, 'pong\n200 1.1', 'HTTP/1.1 200 with the body, no 500')
  t.notOk('http2-settings' in upstream.requests[0].headers, 'HTTP2-Settings is named in Connection: hop-by-hop')
  t.equal(upstream.requests[0].headers['x-real-ip'], '127.0.0.1')
})

// curl offers h2c on uploads too: the body comes with the offer and must reach Immich. A short
// PROXY_TIMEOUT makes a lost body fail fast (504) instead of hanging for 600 s.
t.test('curl --http2 uploads through the proxy, with Content-Length and chunked', async t => {
  const upstream = await startUpstream(t, (req, res) => {
    text(req).then(body => res.end(`${req.method} ${body}`), () => res.destroy())
  })
  const proxy = await startProxy(t, upstream.url, { PROXY_TIMEOUT: '5s' })
  const curl = ['--silent', '--show-error', '--http2', '--max-time', '20', '--write-out', '\n%{http_code}']

  const posted = await run('curl', [...curl, '--data-binary', '{"deviceId":"cli"}', `${proxy.url}/api/assets`])
  t.equal(posted.stdout, 'POST {"deviceId":"cli"}\n200', 'Content-Length body forwarded')

  const piped = await new Promise<string>((resolve, reject) => {
    const child = execFile('curl', [...curl, '--upload-file', '-', `${proxy.url}/api/assets/abc/original`], (error, stdout) => {
      if (error !== null) reject(error)
      else resolve(stdout)
    })
    child.stdin?.end('chunked bytes from stdin')
  })
  t.equal(piped, 'PUT chunked bytes from stdin\n200', 'chunked body (with Expect: 100-continue) forwarded')
  t.equal(upstream.requests.length, 2)
})
