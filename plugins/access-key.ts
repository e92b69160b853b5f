// The reference "nginx TLS + Access Key" config: `if ($http_x_access_key != "<key>") { return 403; }`,
// done so that it cannot leak or be guessed: compared in constant time, stripped before Immich
// sees it, never logged, applied to every request and WebSocket upgrade (both pass through this
// onRequest hook), braked after repeated failures, and usable from a browser through an unlock
// page that trades the key for a signed, expiring cookie.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import createError from '@fastify/error'
import { KeyRing } from './lib/key-ring.js'
import { FailureLimiter, type FailureLimiterOptions } from './lib/failure-limiter.js'
import { safeNext, unlockPage } from './lib/unlock-page.js'

export interface AccessKeyOptions {
  /** Accepted keys. With none here and no file, there is no guard at all. */
  accessKeys?: string[]
  /** A file with one key per line (Docker secrets); re-read when it changes. */
  accessKeyFile?: string
  /**
   * Wrong keys allowed from one address within the window before it gets 429 for the cool-down.
   * Default 10 in 10 minutes, then 15 minutes; false turns the brake off.
   */
  failureLimit?: FailureLimiterOptions | false
  /** Lifetime of the unlock cookie in ms. Default 30 days; 0 turns the unlock page off. */
  cookieMaxAge?: number
  /** How often the key file is checked for changes, in ms. Default 2000. */
  fileCheckInterval?: number
}

export const AccessKeyRequiredError = createError('IMMICH_PROXY_ACCESS_KEY', 'A valid X-Access-Key header is required', 403)
export const TooManyFailuresError = createError('IMMICH_PROXY_ACCESS_KEY_FAILURES', 'Too many wrong access keys; try again in %s seconds', 429)

/** Reserved for the unlock form; Immich has no route under /.immich-proxy/. */
export const UNLOCK_PATH = '/.immich-proxy/unlock'
export const COOKIE_NAME = 'immich_proxy_access'

const HEADER = 'x-access-key'
const TOKEN_CONTEXT = 'immich-proxy-unlock:'

function tokenFor (key: string, expiresAt: number): string {
  return `${expiresAt}.${KeyRing.sign(key, TOKEN_CONTEXT + expiresAt).toString('base64url')}`
}

function tokenValid (ring: KeyRing, token: string, now: number): boolean {
  const dot = token.indexOf('.')
  const expiresAt = Number(token.slice(0, dot))
  if (dot < 1 || !Number.isSafeInteger(expiresAt) || expiresAt <= now) return false
  return ring.verifies(TOKEN_CONTEXT + expiresAt, Buffer.from(token.slice(dot + 1), 'base64url'))
}

/** Takes this proxy's cookie out of the Cookie header (Immich never sees it) and returns it. */
function takeUnlockCookie (request: FastifyRequest): string | undefined {
  const header = request.headers.cookie
  if (header === undefined || !header.includes(COOKIE_NAME)) return undefined
  let token: string | undefined
  const kept = header.split(';').filter(pair => {
    const [name, ...value] = pair.trim().split('=')
    if (name !== COOKIE_NAME) return true
    token = value.join('=')
    return false
  })
  if (kept.length === 0) delete request.headers.cookie
  else request.headers.cookie = kept.join(';').trim()
  return token
}

function wantsPage (request: FastifyRequest): boolean {
  const path = request.url
  return (request.method === 'GET' || request.method === 'HEAD') &&
    !path.startsWith('/api/') && path !== '/api' &&
    (request.headers.accept ?? '').includes('text/html') &&
    request.headers.upgrade === undefined
}

function isSecure (request: FastifyRequest): boolean {
  return request.forwardedHeaders['x-forwarded-proto'] === 'https'
}

export default fp<AccessKeyOptions>(async function accessKey (fastify, opts) {
  const ring = new KeyRing(opts.accessKeys ?? [], opts.accessKeyFile)
  if ((opts.accessKeys ?? []).length === 0 && opts.accessKeyFile === undefined) return

  const limiter = opts.failureLimit === false
    ? undefined
    : new FailureLimiter(opts.failureLimit ?? { maxFailures: 10, windowMs: 600_000, cooldownMs: 900_000 })
  const cookieMaxAge = opts.cookieMaxAge ?? 30 * 24 * 3600 * 1000

  const stopWatching = ring.watch(
    count => fastify.log.info({ keys: count }, 'access key file reloaded'),
    error => fastify.log.error({ err: { message: error.message } }, 'access key file unreadable; its keys are revoked'),
    opts.fileCheckInterval
  )
  fastify.addHook('onClose', async () => stopWatching())

  // Answers the refused request: the unlock page for a browser, 403 JSON for everything else.
  function refuse (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void, guessed: boolean): void {
    if (guessed) limiter?.fail(request.forwardedHeaders['x-real-ip'])
    if (cookieMaxAge > 0 && wantsPage(request)) {
      // a reply sent from a hook ends the request there: done() is not called
      reply.code(403).type('text/html; charset=utf-8').header('cache-control', 'no-store')
        .send(unlockPage(UNLOCK_PATH, safeNext(request.url), guessed ? 'That key is not valid.' : undefined))
      return
    }
    done(new AccessKeyRequiredError())
  }

  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.url === UNLOCK_PATH && request.method === 'POST') return done()

    const client = request.forwardedHeaders['x-real-ip']
    const wait = limiter?.retryAfter(client) ?? 0
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000)
      reply.header('retry-after', String(seconds))
      return done(new TooManyFailuresError(seconds))
    }

    const sent = request.raw.headersDistinct[HEADER]
    delete request.headers[HEADER]
    const token = takeUnlockCookie(request)
    if (sent !== undefined) {
      // A repeated header is refused rather than guessed at: proxies in front may join or split it.
      if (sent.length === 1 && ring.accepts(sent[0])) return done()
      return refuse(request, reply, done, true)
    }
    if (token !== undefined && tokenValid(ring, token, Date.now())) return done()
    refuse(request, reply, done, false)
  })

  if (cookieMaxAge === 0) return

  await fastify.register(async function unlockRoute (scope) {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 },
      (request, body, done) => done(null, new URLSearchParams(body as string)))

    scope.post(UNLOCK_PATH, (request, reply) => {
      const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams()
      const key = form.get('key') ?? ''
      const next = safeNext(form.get('next'))
      const client = request.forwardedHeaders['x-real-ip']
      const wait = limiter?.retryAfter(client) ?? 0
      if (wait > 0) {
        const seconds = Math.ceil(wait / 1000)
        return reply.code(429).header('retry-after', String(seconds)).type('text/html; charset=utf-8')
          .send(unlockPage(UNLOCK_PATH, next, `Too many wrong keys; try again in ${seconds} seconds.`))
      }
      if (!ring.accepts(key)) {
        limiter?.fail(client)
        return reply.code(403).type('text/html; charset=utf-8').header('cache-control', 'no-store')
          .send(unlockPage(UNLOCK_PATH, next, 'That key is not valid.'))
      }
      const expiresAt = Date.now() + cookieMaxAge
      const attributes = [`Max-Age=${Math.floor(cookieMaxAge / 1000)}`, 'Path=/', 'HttpOnly', 'SameSite=Lax']
      if (isSecure(request)) attributes.push('Secure')
      reply.header('set-cookie', `${COOKIE_NAME}=${tokenFor(key, expiresAt)}; ${attributes.join('; ')}`)
      return reply.code(303).header('location', next).header('cache-control', 'no-store').send()
    })
  })
}, { name: 'immich-proxy-access-key', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
