// Real parts for every test: an upstream HTTP server on 127.0.0.1:0 standing in for Immich, and
// the proxy built exactly as src/server.ts builds it (src/build.ts), listening on 127.0.0.1:0.
import type { FastifyInstance } from 'fastify'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
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

/** The proxy's pino output, as text and as parsed lines, as it is written. */
export class LogCapture extends Writable {
  text = ''
  readonly lines: Array<Record<string, unknown> & { level: number, msg?: string }> = []

  override _write (chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const text = chunk.toString()
    this.text += text
    for (const line of text.split('\n')) {
      if (line.trim() !== '') this.lines.push(JSON.parse(line))
    }
    callback()
  }

  /** Lines at `level` (pino numbers: 30 info, 40 warn, 50 error) whose message matches. */
  find (level: number, msg: RegExp): Array<Record<string, unknown>> {
    return this.lines.filter(line => line.level === level && msg.test(line.msg ?? ''))
  }
}

export interface Proxy {
  app: FastifyInstance
  /** http:// or, with TLS_CERT_FILE or TLS_SELF_SIGNED, https://127.0.0.1:port */
  url: string
  port: number
  /** What the proxy logged: nothing unless the test sets LOG_LEVEL. */
  log: LogCapture
  /** The HTTP version of every request the listener parsed ('2.0' or '1.1'), in order. */
  versions: string[]
}

/**
 * The proxy as src/build.ts builds it from literal environment values (never the ambient
 * environment), TLS included when they ask for it, listening on 127.0.0.1:0 and closed when the
 * test ends. Its log goes to `log`, at LOG_LEVEL (silent unless given).
 */
export async function startProxy (t: Test, upstream: string, env: Record<string, string> = {}): Promise<Proxy> {
  const config = parseConfig({ UPSTREAM_URL: upstream, LOG_LEVEL: 'silent', ...env })
  const log = new LogCapture()
  const server = await buildServer(config, { logStream: log })
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const versions: string[] = []
  server.server.on('request', (req: { httpVersion: string }) => versions.push(req.httpVersion))
  const port = (server.server.address() as AddressInfo).port
  return { app: server, url: `${config.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`, port, log, versions }
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
