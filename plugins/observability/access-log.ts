// One log line per request (and per WebSocket, from the tunnel), in place of Fastify's two. No
// headers are logged, and key-like query parameters (share links carry `key`) are masked.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Socket } from 'node:net'
import { requestDone, requestStarted, type RequestDone } from './events.js'
import { redactedPath } from './redact.js'
import { declaresBody } from '../forwarding/hop-by-hop.js'

export interface AccessLogOptions {
  /** false: publish the figures to the metrics but write no log line. Default true. */
  log?: boolean
}

interface Stats {
  socket?: CountedSocket
  socketRead: number
  socketWritten: number
  /** Worked out once, so the uploads gauge goes up and down on the same answer. */
  hasBody: boolean
  handedToImmich?: bigint
  immichAnswered?: bigint
}

const kStats = Symbol('immich-proxy.accessLog')
type Observed = FastifyRequest & { [kStats]?: Stats }

// Where the previous request on a keep-alive connection ended: the next request's head was read
// before its onRequest, so the socket's counters then are already past where its bytes begin.
const kCountedTo = Symbol('immich-proxy.countedTo')
type CountedSocket = Socket & { [kCountedTo]?: { read: number, written: number } }

function ms (from: bigint, to: bigint): number {
  return Number(to - from) / 1e6
}

export default fp<AccessLogOptions>(async function accessLog (fastify, opts) {
  const writeLog = opts.log ?? true

  function finish (request: Observed, reply: FastifyReply): void {
    const stats = request[kStats] as Stats
    const socket = stats.socket
    const http2 = request.raw.httpVersionMajor === 2
    if (socket !== undefined) socket[kCountedTo] = { read: socket.bytesRead, written: socket.bytesWritten }
    // HTTP/2 streams share one socket, so their declared lengths are the best figure; HTTP/1.1
    // requests follow one another, so the socket's counters tell (headers included).
    const bytesIn = !http2 && socket !== undefined ? socket.bytesRead - stats.socketRead : Number(request.headers['content-length'] ?? 0)
    const bytesOut = !http2 && socket !== undefined ? socket.bytesWritten - stats.socketWritten : Number(reply.getHeader('content-length') ?? 0)
    const done: RequestDone = {
      method: request.method,
      statusCode: reply.raw.headersSent ? reply.statusCode : 0,
      hasBody: stats.hasBody,
      bytesIn,
      bytesOut,
      durationMs: reply.elapsedTime,
      upstreamMs: stats.handedToImmich !== undefined && stats.immichAnswered !== undefined ? ms(stats.handedToImmich, stats.immichAnswered) : undefined
    }
    if (requestDone.hasSubscribers) requestDone.publish(done)
    if (writeLog) {
      request.log.info({
        method: done.method,
        path: redactedPath(request.url),
        status: done.statusCode,
        bytesIn,
        bytesOut,
        durationMs: Math.round(done.durationMs * 10) / 10,
        upstreamMs: done.upstreamMs === undefined ? undefined : Math.round(done.upstreamMs * 10) / 10,
        client: request.forwardedHeaders?.['x-real-ip'] ?? request.ip,
        aborted: !reply.raw.writableFinished || undefined
      }, 'request')
    }
  }

  fastify.addHook('onRequest', (request: Observed, reply, done) => {
    const socket = request.raw.socket as CountedSocket | undefined
    const from = socket?.[kCountedTo]
    const stats: Stats = { socket, socketRead: from?.read ?? 0, socketWritten: from?.written ?? 0, hasBody: declaresBody(request.headers) }
    request[kStats] = stats
    if (requestStarted.hasSubscribers) requestStarted.publish({ hasBody: stats.hasBody })
    // 'close' fires however the exchange ends (finished, aborted by either side, hijacked
    // upgrade closing), where onResponse misses aborted requests
    reply.raw.once('close', () => finish(request, reply))
    done()
  })

  fastify.addHook('preHandler', (request: Observed, reply, done) => {
    (request[kStats] as Stats).handedToImmich = process.hrtime.bigint()
    done()
  })

  fastify.addHook('onSend', (request: Observed, reply, payload, done) => {
    const stats = request[kStats]
    if (stats?.handedToImmich !== undefined) stats.immichAnswered = process.hrtime.bigint()
    done(null, payload)
  })
}, { name: 'immich-proxy-access-log', fastify: '5.x' })
