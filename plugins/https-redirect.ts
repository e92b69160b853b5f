// The optional plain-HTTP listener beside HTTPS: everything is sent to HTTPS with 308 (method and
// body kept, unlike 301/302), except `/.well-known/immich`, which the mobile app may probe over
// HTTP and which is proxied by the well-known plugin registered before this one, and
// `/.well-known/acme-challenge/`, kept free for ACME http-01 (404 until a plugin answers there).
import fp from 'fastify-plugin'

export interface HttpsRedirectOptions {
  /** The port clients reach HTTPS on (the published one, not the container's). Default 443. */
  httpsPort?: number
}

/** The request's host name without its port; IPv6 literals keep their brackets. */
function hostname (host: string): string {
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
}

export default fp<HttpsRedirectOptions>(async function httpsRedirect (fastify, opts) {
  const port = opts.httpsPort ?? 443
  const suffix = port === 443 ? '' : `:${port}`

  fastify.all('/.well-known/acme-challenge/*', (request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No ACME challenge is served here' })
  })

  fastify.all('/*', (request, reply) => {
    const name = hostname(request.headers.host ?? '')
    // only a plain host name or address goes into Location: no userinfo or path smuggled in Host
    if (!/^([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+\.?$|^\[[0-9A-Fa-f:.]+\]$/.test(name)) {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'A valid Host header is needed to redirect to HTTPS' })
    }
    reply.code(308).header('location', `https://${name}${suffix}${request.url}`).send()
  })
}, { name: 'immich-proxy-https-redirect', fastify: '5.x' })
