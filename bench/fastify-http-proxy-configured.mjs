// "Configured @fastify/http-proxy" in bench/run.ts and bench/fidelity-http-proxy.ts: the library
// set up as well as its options allow for Immich, to compare with immich-proxy on what it can
// do, not on its defaults. Plain JavaScript so that it runs on bare `node` with no loader in the
// measured process. Env: UPSTREAM_URL, PORT, PROXY_TIMEOUT_MS (default 600 000, the reference
// configs' proxy_read_timeout).
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
import { METHODS } from 'node:http'
import { Pool } from 'undici'

const upstream = process.env.UPSTREAM_URL
const timeout = Number(process.env.PROXY_TIMEOUT_MS ?? 600_000)

// RFC 9110 §7.6.1, plus Expect (Node has already answered 100 Continue, and undici throws on it):
// undici refuses most of these outright, which reply-from would turn into a 500
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'http2-settings', 'expect']
// what ws writes itself for the handshake to Immich
const HANDSHAKE = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']

function withoutFields (headers, names) {
  const listed = String(headers.connection ?? '').split(',').map(name => name.trim().toLowerCase())
  for (const name of [...names, ...listed]) if (name !== '') delete headers[name]
  return headers
}

/** Host kept as the client sent it (nginx `$http_host`), and nginx's forwarded headers. */
function forwarded (request) {
  const incoming = request.headers['x-forwarded-for']
  return {
    host: request.headers.host,
    'x-real-ip': request.ip,
    // `$proxy_add_x_forwarded_for`
    'x-forwarded-for': incoming ? `${incoming}, ${request.ip}` : request.ip,
    'x-forwarded-proto': request.protocol,
    'x-forwarded-host': request.headers.host
  }
}

// immich-proxy's bodies (plugins/forwarding/upstream.ts): no upstream address reaches the client
function onError (reply, { error }) {
  const statusCode = error.statusCode === 504 ? 504 : 502
  reply.code(statusCode).type('application/json; charset=utf-8').send({
    statusCode,
    error: statusCode === 504 ? 'Gateway Timeout' : 'Bad Gateway',
    message: statusCode === 504 ? 'Immich did not answer in time' : 'Immich did not answer; is the server running?'
  })
}

const app = Fastify({
  logger: false,
  // the client's idle socket outlives the upstream timers, so that Immich's silence gets its 504
  // (equal, the two race and the client may see the socket close instead)
  connectionTimeout: timeout + 10_000,
  // Node 20's 300 s would cut long uploads
  requestTimeout: 0,
  keepAliveTimeout: 75_000,
  // find-my-way's 100-character default turns long paths into 404s
  routerOptions: { maxParamLength: 65_536 }
})
// Fastify 5 routes only the common methods; Immich's WebDAV-style clients need the rest
for (const method of METHODS) {
  if (method !== 'CONNECT' && !app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
}

await app.register(async function scope (scope) {
  // Fastify's text/plain and JSON parsers would read a body whole under its 1 MiB bodyLimit; the
  // plugin then adds its pass-through parsers for every type, so uploads stream
  scope.removeAllContentTypeParsers()
  await scope.register(proxy, {
    upstream,
    httpMethods: app.supportedMethods.filter(method => method !== 'CONNECT'),
    // one pool, as immich-proxy's: a connection per request in flight, up to its cap
    undici: new Pool(upstream, { connections: 1024, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout }),
    // reply-from retries a GET answered 503 up to 10 times unless no method is retryable
    retryMethods: [],
    disableRequestLogging: true,
    internalRewriteLocationHeader: false,
    replyOptions: {
      rewriteRequestHeaders: (request, headers) => Object.assign(withoutFields(headers, HOP_BY_HOP), forwarded(request)),
      rewriteHeaders: headers => withoutFields(headers, HOP_BY_HOP),
      onError
    },
    websocket: true,
    // Immich's socket.io (engine.io) declines permessage-deflate, so both hops go without it: each
    // hop negotiates on its own, and with it on the client would deflate to a proxy that inflates
    wsServerOptions: { perMessageDeflate: false },
    // a client gone before Immich's 101 arrived would leave that socket to Immich open: the
    // library closes the other side only once it is open
    wsHooks: { onConnect: (context, source, target) => { if (source.readyState !== source.OPEN) target.terminate() } },
    wsClientOptions: {
      perMessageDeflate: false,
      // by default only the cookie reaches Immich
      rewriteRequestHeaders: (headers, request) => Object.assign(withoutFields({ ...request.headers }, [...HOP_BY_HOP, ...HANDSHAKE]), headers, forwarded(request))
    }
  })
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => process.exit(0))
