// Closing the proxy ends its ACME work: a request to the CA in flight is cut and not retried, and
// one acme-client waits to retry is not sent. Otherwise acme-client goes on asking a CA for minutes
// (5 tries, 5 s more each time), keeping an embedding app's process alive after app.close().
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startProxy, startUpstream } from './helper.js'
import { makeCertificate } from './helpers/tls.js'
import { waitFor } from './helpers/wait.js'
import { temporaryDirectory } from './helpers/ops.js'

interface StandInCa { directory: string, caFile: string, requests: string[], closedSockets: () => number }

/** An HTTPS server where a CA would be, answering each request with `answer`. */
async function startCa (t: Test, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<StandInCa> {
  // a name of its own: with two stand-ins' certificates of one name trusted, OpenSSL checks the second against the first
  const certificate = await makeCertificate(`ca-${randomUUID()}.test`)
  const dir = temporaryDirectory(t, 'immich-proxy-ca-')
  const caFile = join(dir, 'ca.pem')
  writeFileSync(caFile, certificate.cert)
  const requests: string[] = []
  let closedSockets = 0
  const server = createHttpsServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`)
    answer(req, res)
  })
  server.on('secureConnection', (socket: Socket) => socket.on('close', () => { closedSockets++ }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  return { directory: `https://127.0.0.1:${port}/directory`, caFile, requests, closedSockets: () => closedSockets }
}

async function startOrdering (t: Test, ca: StandInCa): Promise<Awaited<ReturnType<typeof startProxy>>> {
  const upstream = await startUpstream(t, (req, res) => res.end('immich'))
  const storage = temporaryDirectory(t, 'immich-proxy-acme-')
  return await startProxy(t, upstream.url, {
    ACME_DOMAINS: 'photos.example.test',
    ACME_DIRECTORY: ca.directory,
    ACME_CA_FILE: ca.caFile,
    ACME_STORAGE: storage
  })
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

t.test('a request to the CA in flight when the proxy closes is cut, and not retried', async t => {
  // the CA never answers
  const ca = await startCa(t, () => {})
  const proxy = await startOrdering(t, ca)
  await waitFor(() => ca.requests.length > 0, 10_000, 'the order\'s first request')
  await proxy.app.close()
  await waitFor(() => ca.closedSockets() > 0, 2000, 'the request cut by the proxy\'s close')
  // acme-client would retry a request that got no answer 5 s later
  await sleep(6000)
  t.same(ca.requests, ['GET /directory'], 'nothing asked after the close')
})

t.test('a retry acme-client waits to send when the proxy closes is not sent', async t => {
  // the CA asks to be asked again in 2 s
  const ca = await startCa(t, (req, res) => res.writeHead(503, { 'retry-after': '2', 'content-type': 'application/problem+json' })
    .end(JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'busy' })))
  const proxy = await startOrdering(t, ca)
  await waitFor(() => ca.requests.length > 0, 10_000, 'the order\'s first request')
  await proxy.app.close()
  await sleep(3000)
  t.same(ca.requests, ['GET /directory'], 'the retry due 2 s later was not sent')
})
