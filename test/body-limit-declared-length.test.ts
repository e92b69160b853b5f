import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { request } from 'undici'
import { startProxy, startUpstream, type Upstream } from './helper.js'
import { curl, receiveBody } from './helpers/bodies.js'
import { within } from './helpers/wait.js'

// BODY_LIMIT=1k: 1024 bytes pass, 1025 do not (nginx client_max_body_size semantics)
const env = { BODY_LIMIT: '1k' }

async function immich (t: Test): Promise<Upstream> {
  return await startUpstream(t, (req, res) => {
    receiveBody(req).then(({ body }) => res.end(JSON.stringify({ bytes: body.length })))
  })
}

t.test('a declared Content-Length over the limit gets 413 and Immich sees no request', async t => {
  const upstream = await immich(t)
  const proxy = await startProxy(t, upstream.url, env)
  const res = await request(`${proxy.url}/api/assets`, { method: 'POST', body: Buffer.alloc(2048, 'a') })
  t.equal(res.statusCode, 413)
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(await res.body.json(), { statusCode: 413, error: 'Payload Too Large', message: 'Request body is larger than 1024 bytes' })
  t.equal(upstream.requests.length, 0, 'Immich never heard of it')
})

t.test('a body exactly at the limit passes', async t => {
  const upstream = await immich(t)
  const proxy = await startProxy(t, upstream.url, env)
  const res = await request(`${proxy.url}/api/assets`, { method: 'POST', body: Buffer.alloc(1024, 'a') })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { bytes: 1024 })
  t.equal(upstream.requests.length, 1)
})

t.test('curl with Expect: 100-continue gets 413 without sending the body', async t => {
  const upstream = await immich(t)
  const proxy = await startProxy(t, upstream.url, env)
  const file = `${t.testdir()}/photo.jpg`
  await writeFile(file, Buffer.alloc(2048, 'a'))
  const result = await curl([
    '-H', 'Expect: 100-continue', '-H', 'content-type: application/octet-stream',
    '--data-binary', `@${file}`, `${proxy.url}/api/assets`
  ])
  t.equal(result.statusCode, 413)
  t.match(JSON.parse(result.body), { statusCode: 413, error: 'Payload Too Large' })
  t.equal(result.uploaded, 0, 'curl was never invited to send the body')
  t.equal(upstream.requests.length, 0, 'Immich never heard of it')
})

t.test('the 413 does not wait for a huge declared body: the connection is closed after it', async t => {
  const upstream = await immich(t)
  const proxy = await startProxy(t, upstream.url, env)
  const socket = connect(proxy.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let response = ''
  socket.on('data', chunk => { response += chunk.toString('latin1') })
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
  // 50 GiB announced, 4 KiB sent, then nothing: only a proxy that answers and hangs up ends this
  socket.write(`POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nContent-Length: ${50 * 1024 ** 3}\r\n\r\n`)
  socket.write(Buffer.alloc(4096, 'a'))
  await within(closed, 10_000, 'connection close after the 413')
  t.match(response, /^HTTP\/1\.1 413 /)
  t.match(response, /\r\nconnection: close\r\n/i)
  t.match(response, /"statusCode":413/)
  t.equal(upstream.requests.length, 0, 'Immich never heard of it')
})
