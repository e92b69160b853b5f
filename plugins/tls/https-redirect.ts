// The optional plain-HTTP listener: everything goes to HTTPS with 308 (method and body kept,
// unlike 301/302), except `/.well-known/immich`, which the mobile app may probe over HTTP (the
// well-known plugin proxies it), and `/.well-known/acme-challenge/`: the http-01 tokens of this
// process's own ACME orders are answered, any other is 404.
// A body is never invited, read or judged here: the client sends it again to HTTPS.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { declaresBody } from '../forwarding/hop-by-hop.js'
import { DEFAULTS } from '../defaults.js'
import type { AcmeChallenges } from './acme.js'

export interface HttpsRedirectOptions {
  /** The port clients reach HTTPS on (the published one, not the container's). Default 443. */
  httpsPort?: number
  /** The http-01 tokens being validated now (plugins/tls/acme.ts). Default: none, every token 404. */
  acmeChallenges?: Pick<AcmeChallenges, 'http01'>
}

// RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ], with a DNS name, an IPv4
// address or a bracketed IPv6 literal. Nothing else goes into Location: no userinfo, path or
// second port smuggled in, and no unbracketed IPv6 whose first group would pass for a name.
const HOST = /^((?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/

function hostname (host: string | undefined): string | undefined {
  return HOST.exec(host ?? '')?.[1]
}

// The connection closes after the answer so the client does not send the body into it (Node would
// read and drop all of it before the connection could carry another request).
function leaveBodyUnread (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return declaresBody(request.headers) ? reply.header('connection', 'close') : reply
}

export default fp<HttpsRedirectOptions>(async function httpsRedirect (fastify, opts) {
  const port = opts.httpsPort ?? DEFAULTS.httpsRedirectPort
  const suffix = port === 443 ? '' : `:${port}`

  // Node answers `Expect: 100-continue` itself unless someone listens for it; a listener someone
  // else installed keeps the job (two would hand every request on twice).
  const server = fastify.server
  if (server.listenerCount('checkContinue') === 0) {
    const withoutInvitation = (req: IncomingMessage, res: ServerResponse): void => { server.emit('request', req, res) }
    server.on('checkContinue', withoutInvitation)
    fastify.addHook('onClose', async () => { server.off('checkContinue', withoutInvitation) })
  }

  const challenges = opts.acmeChallenges
  const challenge = async (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const keyAuthorization = request.method === 'GET' || request.method === 'HEAD' ? challenges?.http01(request.params['*']) : undefined
    if (keyAuthorization !== undefined) return await reply.type('application/octet-stream').send(keyAuthorization)
    return await leaveBodyUnread(request, reply).code(404).send({ statusCode: 404, error: 'Not Found', message: 'No ACME challenge is served here' })
  }
  const redirect = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const name = hostname(request.headers.host)
    if (name === undefined) {
      return await leaveBodyUnread(request, reply).code(400).send({ statusCode: 400, error: 'Bad Request', message: 'A valid Host header is needed to redirect to HTTPS' })
    }
    return await leaveBodyUnread(request, reply).code(308).header('location', `https://${name}${suffix}${request.url}`).send()
  }

  // Answered in onRequest, before Fastify's body parsing would refuse some requests (415, 400, 413);
  // the handler, which Fastify requires, never runs.
  const method = fastify.supportedMethods
  fastify.route({ method, url: '/.well-known/acme-challenge/*', onRequest: challenge, handler: challenge })
  fastify.route({ method, url: '/*', onRequest: redirect, handler: redirect })
}, { name: 'immich-proxy-https-redirect', fastify: '5.x' })
