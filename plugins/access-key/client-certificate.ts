// The client-certificate way through the access gate (mTLS). The listener asks every client for
// a certificate without requiring one (src/build.ts: requestCert, rejectUnauthorized false), so
// a browser without one still completes the handshake and can be told what is missing; OpenSSL
// has already checked the certificate presented against TLS_CLIENT_CA_FILE (chain and validity),
// and its verdict is the socket's `authorized`. A certificate is proven by a private key in the
// handshake, never sent as a guessable value: the way is not braked.
import type { FastifyReply, FastifyRequest } from 'fastify'
import createError from '@fastify/error'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { gatePage } from './unlock-page.js'

export const ClientCertificateRequiredError = createError('IMMICH_PROXY_CLIENT_CERTIFICATE', 'A valid client certificate is required', 403)

/**
 * The TLS connection a request came on. An HTTP/2 request's `socket` stands for its session's
 * (a proxy object Node hands out); the session's own is named as such. An HTTP/1.1 request and
 * a WebSocket upgrade (routed with its IncomingMessage, plugins/forwarding/websocket.ts) carry
 * theirs directly. Plain HTTP has none.
 */
function tlsSocket (request: FastifyRequest): TLSSocket | undefined {
  const raw = request.raw as IncomingMessage & { stream?: { session?: { socket?: Socket } } }
  const socket = raw.stream?.session?.socket ?? raw.socket
  return (socket as TLSSocket | null)?.encrypted === true ? socket as TLSSocket : undefined
}

/** Whether the client presented a certificate that chains to the client CA and is in date. */
export function clientCertificateValid (request: FastifyRequest): boolean {
  return tlsSocket(request)?.authorized === true
}

const PAGE = gatePage('client certificate required', 'main{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:min(26rem,92vw)}', `<main>
<h1>Client certificate required</h1>
<p>This Immich server only answers devices that present a client certificate it trusts.
Install the certificate you were given in this browser or device, then reload the page.</p>
</main>`)

/**
 * The refusal when no access key is set (the gate is on for client certificates alone): there is
 * no key to type, so a browser gets a page saying what is missing, anything else 403 JSON.
 * `page`: the request is a browser's page load.
 */
export function refuseWithoutCertificate (reply: FastifyReply, done: (error?: Error) => void, page: boolean): void {
  if (page) {
    reply.code(403).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(PAGE)
    return
  }
  done(new ClientCertificateRequiredError())
}
