// The optional plain-HTTP listener beside HTTPS: everything is sent to HTTPS with 308 (method and
// body kept, unlike 301/302), except `/.well-known/immich`, which the mobile app may probe over
// HTTP and which is proxied by the well-known plugin registered before this one, and
// `/.well-known/acme-challenge/`, kept free for ACME http-01 (404 until a plugin answers there).
import fp from 'fastify-plugin'

export interface HttpsRedirectOptions {
  /** The port clients reach HTTPS on (the published one, not the container's). Default 443. */
  httpsPort?: number
}

// RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ], with a DNS name, an IPv4
// address or a bracketed IPv6 literal. Nothing else goes into Location: no userinfo, path or
// second port smuggled in, and no unbracketed IPv6 whose first group would pass for a name.
const HOST = /^((?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/

/** The request's host name without its port (IPv6 literals keep their brackets), or undefined. */
function hostname (host: string | undefined): string | undefined {
  return HOST.exec(host ?? '')?.[1]
}

export default fp<HttpsRedirectOptions>(async function httpsRedirect (fastify, opts) {
  const port = opts.httpsPort ?? 443
  const suffix = port === 443 ? '' : `:${port}`

  fastify.all('/.well-known/acme-challenge/*', (request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No ACME challenge is served here' })
  })

  fastify.all('/*', (request, reply) => {
    const name = hostname(request.headers.host)
    if (name === undefined) {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'A valid Host header is needed to redirect to HTTPS' })
    }
    reply.code(308).header('location', `https://${name}${suffix}${request.url}`).send()
  })
}, { name: 'immich-proxy-https-redirect', fastify: '5.x' })
