// TLS termination. The listener's certificate is set where the server is created (src/server.ts);
// this plugin tells the rest of the chain which scheme the client used, so X-Forwarded-Proto
// (nginx `$scheme`) and the WebSocket tunnel agree. Certificate reload, HSTS and the HTTP→HTTPS
// redirect come with the TLS issue.
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { TLSSocket } from 'node:tls'

declare module 'fastify' {
  interface FastifyRequest {
    /** The scheme of the connection the client opened to this proxy: 'http' or 'https'. */
    readonly listenerScheme: 'http' | 'https'
  }
}

function listenerScheme (this: FastifyRequest): 'http' | 'https' {
  return (this.raw.socket as TLSSocket | null)?.encrypted === true ? 'https' : 'http'
}

export default fp(async function tls (fastify) {
  fastify.decorateRequest('listenerScheme', { getter: listenerScheme })
}, { name: 'immich-proxy-tls', fastify: '5.x' })
