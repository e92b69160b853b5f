import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { startProxy, startUpstream, type Upstream } from './helper.js'
import { curl, digestOf, signal } from './helpers/bodies.js'
import { within } from './helpers/wait.js'

async function immich (t: Test): Promise<Upstream> {
  return await startUpstream(t, (req, res) => {
    digestOf(req).then(received => {
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ id: 'asset-1', bytes: received.bytes, sha1: received.sha1(), expect: req.headers.expect ?? null }))
    }, error => res.destroy(error))
  })
}

t.test('curl uploading with Expect: 100-continue gets the body through and Immich\'s answer back', async t => {
  const upstream = await immich(t)
  const proxy = await startProxy(t, upstream.url)
  const photo = randomBytes(3 * 1024 * 1024)
  const file = `${t.testdir()}/photo.jpg`
  await writeFile(file, photo)

  const result = await curl([
    '-H', 'Expect: 100-continue', '-H', 'content-type: image/jpeg',
    '--data-binary', `@${file}`, `${proxy.url}/api/assets`
  ])
  t.equal(result.statusCode, 201, 'Immich\'s status')
  t.same(JSON.parse(result.body), {
    id: 'asset-1',
    bytes: photo.length,
    sha1: createHash('sha1').update(photo).digest('hex'),
    // the proxy answered the expectation itself; undici cannot send one on
    expect: null
  }, 'Immich got every byte and curl got Immich\'s answer')
  t.equal(result.uploaded, photo.length)
})

t.test('the proxy answers 100 Continue before the body is sent', async t => {
  const upstream = await immich(t)
  const proxy = await startProxy(t, upstream.url)
  const body = randomBytes(64 * 1024)
  const socket = connect(proxy.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let response = ''
  const invited = signal()
  socket.on('data', data => {
    response += data.toString('latin1')
    if (response.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) invited.resolve()
  })
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
  socket.write(`POST /api/assets HTTP/1.1\r\nHost: immich.test\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`)
  // a client that strictly waits for the invitation: no body until the 100 arrives
  await within(invited.promise, 10_000, 'the 100 Continue')
  socket.write(body)
  await within(closed, 10_000, 'the final answer')
  t.match(response, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /)
  t.match(response, `"bytes":${body.length},"sha1":"${createHash('sha1').update(body).digest('hex')}"`)
})
