// Real parts for every test: an upstream HTTP server on 127.0.0.1:0 standing in for Immich, and
// the proxy built exactly as src/server.ts builds it (src/build.ts), listening on 127.0.0.1:0.
import type { FastifyInstance } from 'fastify'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { buildServer } from '../src/build.js'
import { parseConfig } from '../src/config.js'
import { STARTUP_CHECK_USER_AGENT } from '../src/immich-ping.js'

export interface Upstream {
  server: Server
  url: string
  port: number
  /** Every request the upstream received, in order, but the proxy's start-up check. */
  requests: IncomingMessage[]
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * A real HTTP server on an ephemeral port; closed (with its connections) when the test ends.
 * The proxy's own check at start (src/immich-ping.ts) is answered here as Immich answers it, and
 * neither counted nor handed to `handler`: tests see what their clients sent, and a handler that
 * serves 4 GiB to any GET is not asked for it. `handler` gets it too with `startupCheck: 'handler'`.
 */
export async function startUpstream (t: Test, handler: UpstreamHandler, options: { startupCheck?: 'pong' | 'handler' } = {}): Promise<Upstream> {
  const requests: IncomingMessage[] = []
  const server = createServer((req, res) => {
    if (req.headers['user-agent'] === STARTUP_CHECK_USER_AGENT && options.startupCheck !== 'handler') {
      res.setHeader('content-type', 'application/json')
      res.end('{"res":"pong"}')
      return
    }
    if (req.headers['user-agent'] !== STARTUP_CHECK_USER_AGENT) requests.push(req)
    handler(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  const port = (server.address() as AddressInfo).port
  return { server, url: `http://127.0.0.1:${port}`, port, requests }
}

export interface Proxy {
  app: FastifyInstance
  url: string
  port: number
}

/**
 * The proxy in front of `upstream`, configured from literal environment values (never the
 * ambient environment), listening on 127.0.0.1:0 and closed when the test ends.
 */
export async function startProxy (t: Test, upstream: string, env: Record<string, string> = {}): Promise<Proxy> {
  const config = parseConfig({ UPSTREAM_URL: upstream, LOG_LEVEL: 'silent', ...env })
  const server = await buildServer(config)
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const port = (server.server.address() as AddressInfo).port
  return { app: server, url: `${config.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`, port }
}

/** Reads a whole stream into a string (for small test bodies only). */
export async function text (stream: AsyncIterable<Buffer | string>): Promise<string> {
  let out = ''
  for await (const chunk of stream) out += chunk.toString()
  return out
}

/**
 * Sends `head` (and an optional body) as raw bytes on a fresh TCP connection and returns all
 * that comes back until the server closes: for cases an HTTP client library would normalise.
 */
export async function rawExchange (port: number, head: string, body?: Buffer): Promise<string> {
  const { connect } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head)
      if (body !== undefined) socket.write(body)
    })
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
  })
}
