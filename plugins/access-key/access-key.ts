// The access gate. The reference "nginx TLS + Access Key" config is its first way in:
// `if ($http_x_access_key != "<key>") { return 403; }`, done so that it cannot leak or be
// guessed: compared in constant time, stripped before Immich sees it, never logged, applied to
// every request and WebSocket upgrade (both pass through this onRequest hook) but the discovery
// document, braked after repeated failures, and usable from a browser through an unlock page
// that trades the key for a signed, expiring cookie. Immich's own users get in on what they
// already carry: a client certificate (client-certificate.ts), a session or API key that Immich
// confirms (immich-credentials.ts), or a shared link on its page's requests (shared-links.ts).
//
// What opens the gate is the table WAYS_IN below, tried in its order; `decide` is the one place
// that reads it.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import createError from '@fastify/error'
import { KeyRing, transientReadError } from './key-ring.js'
import { FailureLimiter, type FailureLimiterOptions } from './failure-limiter.js'
import { safeNext, unlockPage, waitInWords } from './unlock-page.js'
import { CredentialChecker, immichCredential, type CredentialCheckOptions, type ImmichCredential } from './immich-credentials.js'
import { shareLinkRequest } from './shared-links.js'
import { clientCertificateValid, refuseWithoutCertificate } from './client-certificate.js'
import { accessKeyRefused, type AccessKeyRefused } from '../observability/events.js'
import { WELL_KNOWN_PATH } from '../forwarding/well-known.js'
import { upstreamDispatcher, upstreamFailure, type UpstreamOptions } from '../forwarding/upstream.js'
import type { Dispatcher } from 'undici'
import { LRUCache } from 'lru-cache'
import { DEFAULTS } from '../defaults.js'

export interface AccessKeyOptions {
  /** Accepted keys. With none here, no file and no client certificates, there is no guard at all. */
  accessKeys?: string[]
  /** A file with one key per line (Docker secrets); re-read when it changes. */
  accessKeyFile?: string
  /**
   * Wrong keys allowed from one address within the window before it gets 429 for the cool-down.
   * Default 10 in 10 minutes, then 15 minutes; false turns the brake off.
   */
  failureLimit?: FailureLimiterOptions | false
  /**
   * The brake to count in instead of one of the plugin's own, so that every listener of a
   * process counts together (src/run.ts shares one). Unused when failureLimit is false.
   */
  brake?: FailureLimiter
  /** Lifetime of the unlock cookie in ms. Default 30 days; 0 turns the unlock page off. */
  cookieMaxAge?: number
  /** How often the key file is checked for changes, in ms. Default 2000. */
  fileCheckInterval?: number
  /**
   * Immich, for the ways in that ask it whether a credential is valid: the pool the proxy uses
   * (`dispatcher`), or an upstream to open one for the gate alone.
   */
  immich?: { dispatcher: Dispatcher } | UpstreamOptions
  /**
   * Let a request through that carries a session token or API key Immich confirms (what the
   * CLI and the apps send). Default true when `immich` is given; true without it is an error.
   */
  allowImmichCredentials?: boolean
  /**
   * Let the requests a shared link's page makes through (SHARE_LINK_REQUESTS), with a link Immich
   * confirms. Default false; true needs `immich`.
   */
  allowShareLinks?: boolean
  /** How long Immich's verdicts on credentials and links are remembered, and the cache's size. */
  credentialCheck?: CredentialCheckOptions
  /**
   * Let a request through that comes on a TLS connection whose client certificate the server
   * verified (`authorized`: the server was created with requestCert and the client CA, as
   * src/build.ts does for TLS_CLIENT_CA_FILE). On with no key at all, the gate is on and these
   * and Immich credentials are its only ways in. Default false.
   */
  clientCertificates?: boolean
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

// `<expiry in ms>.<HMAC-SHA256, base64url>`, in the one spelling tokenFor writes: Number() and
// base64url decoding would also take `+0…` expiries or a last character with other padding bits
const TOKEN = /^([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{43})$/

function tokenValid (ring: KeyRing, token: string, now: number): boolean {
  const match = TOKEN.exec(token)
  if (match === null || Number(match[1]) <= now) return false
  const signature = Buffer.from(match[2], 'base64url')
  if (signature.toString('base64url') !== match[2]) return false
  return ring.verifies(TOKEN_CONTEXT + match[1], signature)
}

/**
 * Every value of `name` as the client sent it. Node's `headersDistinct` would do, but HTTP/2
 * requests (Http2ServerRequest) do not have it; both keep `rawHeaders`.
 */
function sentValues (request: FastifyRequest, name: string): string[] {
  const raw = request.raw.rawHeaders
  const values: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) values.push(raw[i + 1])
  return values
}

/**
 * Takes this proxy's cookie out of the Cookie header (Immich never sees it) and returns its
 * values: a browser may hold more than one (an older one for another path or domain).
 */
function takeUnlockCookies (request: FastifyRequest): string[] {
  const header = request.headers.cookie
  if (header === undefined || !header.includes(COOKIE_NAME)) return []
  const tokens: string[] = []
  const kept = header.split(';').filter(pair => {
    const [name, ...value] = pair.trim().split('=')
    if (name !== COOKIE_NAME) return true
    tokens.push(value.join('='))
    return false
  })
  if (kept.length === 0) delete request.headers.cookie
  else request.headers.cookie = kept.join(';').trim()
  return tokens
}

function wantsPage (request: FastifyRequest): boolean {
  const query = request.url.indexOf('?')
  const path = query === -1 ? request.url : request.url.slice(0, query)
  return (request.method === 'GET' || request.method === 'HEAD') &&
    !path.startsWith('/api/') && path !== '/api' &&
    (request.headers.accept ?? '').includes('text/html') &&
    request.headers.upgrade === undefined
}

/**
 * The discovery document only says where the API is, and the apps and the CLI fetch it before
 * they can send a key. The path is compared as sent: the router would also match a
 * percent-encoded spelling, which Immich may answer with another page.
 */
function isDiscovery (request: FastifyRequest): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') &&
    (request.url === WELL_KNOWN_PATH || request.url.startsWith(WELL_KNOWN_PATH + '?'))
}

function brakeMessage (seconds: number): string {
  return `Too many wrong keys from this address; try again in ${waitInWords(seconds)}.`
}

function isSecure (request: FastifyRequest): boolean {
  return request.forwardedHeaders['x-forwarded-proto'] === 'https'
}

/**
 * Whether a browser sent this POST on another site's behalf (a form or a no-cors fetch on a page
 * elsewhere). A browser always sends Origin with a POST, and Sec-Fetch-Site where it knows it;
 * a request with neither comes from a program such as curl, which no other site can steer. The
 * origin the form lives at is the one clients reach: scheme and host as forwarded by a trusted
 * proxy, else as this listener received them.
 */
function fromAnotherSite (request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true
  const origin = request.headers.origin
  if (origin === undefined) return false
  const forwarded = request.forwardedHeaders
  const host = forwarded['x-forwarded-host'].split(',')[0].trim()
  try {
    // URL compares what a browser compares: scheme, host in lower case, port with defaults
    // dropped. `Origin: null` (a sandboxed frame, a redirect chain) does not parse: refused.
    return new URL(origin).origin !== new URL(`${forwarded['x-forwarded-proto']}://${host}`).origin
  } catch {
    return true
  }
}

/**
 * One way in's finding on a request: it opens the gate; it found its credential wrong (a guess,
 * which ends the search and counts for the brake unless `counted` says it already has); or it
 * has nothing to say (no credential of its kind, or one that cannot be a guess, such as an
 * expired cookie).
 */
type Finding = 'open' | 'none' | { wrong: true, counted: boolean }

interface WayIn {
  name: string
  /** False when the options leave this way off. */
  on?: boolean
  /** Its credentials can be guessed: during a cool-down it is not tried. */
  guessable: boolean
  /** Sync when it can answer at once (a remembered verdict), a promise when it must ask Immich. */
  find: (request: FastifyRequest, seen: Seen) => Finding | Promise<Finding>
}

/** What the hook took out of the request before any way in looks (so Immich never sees it). */
interface Seen {
  keyHeaders: string[]
  unlockTokens: string[]
  now: number
}

const WRONG: Finding = { wrong: true, counted: false }
const WRONG_AGAIN: Finding = { wrong: true, counted: true }

export default fp<AccessKeyOptions>(async function accessKey (fastify, opts) {
  const ring = new KeyRing(opts.accessKeys ?? [], opts.accessKeyFile)
  // no key to check: only client certificates (and Immich credentials) can open the gate
  const keyless = (opts.accessKeys ?? []).length === 0 && opts.accessKeyFile === undefined
  if (keyless && opts.clientCertificates !== true) return

  const limiter = opts.failureLimit === false
    ? undefined
    : opts.brake ?? new FailureLimiter(opts.failureLimit ?? { maxFailures: DEFAULTS.accessKeyMaxFailures, windowMs: DEFAULTS.accessKeyFailureWindow, cooldownMs: DEFAULTS.accessKeyCooldown })
  const cookieMaxAge = opts.cookieMaxAge ?? DEFAULTS.accessKeyCookieMaxAge
  // the limiter groups addresses itself (an IPv6 /64 is one client)
  const brakeKey = (request: FastifyRequest): string => request.forwardedHeaders['x-real-ip']
  const report = (reason: AccessKeyRefused['reason']): void => {
    if (accessKeyRefused.hasSubscribers) accessKeyRefused.publish({ reason } satisfies AccessKeyRefused)
  }
  // what an operator (or fail2ban) looks for: who is guessing; the guess itself is never logged
  const failed = (request: FastifyRequest): void => {
    if (limiter?.fail(brakeKey(request)) === true) {
      request.log.warn({ client: request.forwardedHeaders['x-real-ip'] }, 'too many wrong access keys; answering 429 for the cool-down')
    }
  }

  if (ring.size === 0) fastify.log.warn('ACCESS_KEY_FILE holds no key: every request is refused until one is added')
  const stopWatching = ring.watch(
    count => fastify.log.info({ keys: count }, 'access key file reloaded'),
    error => fastify.log.error({ err: { message: error.message } }, transientReadError(error)
      ? 'access key file unreadable for now (no file descriptor free); its keys stay in service'
      : 'access key file unreadable; its keys are revoked'),
    opts.fileCheckInterval
  )
  fastify.addHook('onClose', async () => stopWatching())

  // no-store keeps the form from standing in for Immich's page in a cache
  const sendPage = (reply: FastifyReply, status: number, next: string, message?: string): FastifyReply =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(unlockPage(UNLOCK_PATH, next, message))
  const showsPage = (request: FastifyRequest): boolean => cookieMaxAge > 0 && !keyless && wantsPage(request)
  /** While the client's cool-down lasts: its seconds, reported and set as Retry-After. */
  const braked = (request: FastifyRequest, reply: FastifyReply): number | undefined => {
    const wait = limiter?.retryAfter(brakeKey(request)) ?? 0
    if (wait <= 0) return undefined
    const seconds = Math.ceil(wait / 1000)
    report('brake')
    reply.header('retry-after', String(seconds))
    return seconds
  }

  // Answers the refused request: the unlock page for a browser, 403 JSON for everything else.
  // A reply sent from a hook ends the request there: done() is not called.
  function refuse (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void, guessed: boolean, counted = false): void {
    report(guessed ? 'wrong' : 'missing')
    if (guessed && !counted) failed(request)
    if (showsPage(request)) {
      sendPage(reply, 403, safeNext(request.url), guessed ? 'That key is not valid.' : undefined)
      return
    }
    if (keyless) return refuseWithoutCertificate(reply, done, wantsPage(request))
    done(new AccessKeyRequiredError())
  }

  let checker: CredentialChecker | undefined
  const allowCredentials = opts.allowImmichCredentials ?? opts.immich !== undefined
  const allowShareLinks = opts.allowShareLinks ?? false
  if (allowCredentials || allowShareLinks) {
    if (opts.immich === undefined) throw new Error(`accessKey: ${allowCredentials ? 'allowImmichCredentials' : 'allowShareLinks'} needs the \`immich\` option (a dispatcher or an upstream) to ask Immich`)
    let dispatcher: Dispatcher
    if ('dispatcher' in opts.immich) dispatcher = opts.immich.dispatcher
    else {
      const own = upstreamDispatcher(opts.immich)
      fastify.addHook('onClose', async () => { await own.destroy() })
      dispatcher = own
    }
    checker = new CredentialChecker(dispatcher, opts.credentialCheck)
  }
  // A stale session cookie (revoked elsewhere) comes back with every request of its browser:
  // counted once per window, it cannot lock that household out; a guesser's every new token counts.
  const countedWrong = new LRUCache<string, true>({ max: 10_000, ttl: DEFAULTS.accessKeyFailureWindow })

  /** Immich's verdict on `credential` as a finding; a wrong one counts once per failure window. */
  // only the ways that need it are on when there is a checker
  const confirmed = (credential: ImmichCredential): Finding | Promise<Finding> => {
    const hash = CredentialChecker.hash(credential)
    const judged = (valid: boolean): Finding => {
      if (valid) return 'open'
      if (countedWrong.has(hash)) return WRONG_AGAIN
      countedWrong.set(hash, true)
      return WRONG
    }
    const verdict = (checker as CredentialChecker).verdict(credential, hash)
    return typeof verdict === 'boolean' ? judged(verdict) : verdict.then(judged)
  }

  // The ways in, in the order they are tried (those the options leave off are dropped). A wrong
  // key header or credential ends the search.
  const ways: WayIn[] = [
    {
      name: 'access key header',
      guessable: true,
      // a repeated header is refused rather than guessed at: proxies in front may join or split it
      find: (request, seen) => keyless || seen.keyHeaders.length === 0 ? 'none' : seen.keyHeaders.length === 1 && ring.accepts(seen.keyHeaders[0]) ? 'open' : WRONG
    },
    {
      name: 'unlock cookie',
      // not guessable, so a cool-down does not stop it: one guesser behind a shared home router
      // does not lock the household's browsers out
      guessable: false,
      find: (request, seen) => seen.keyHeaders.length === 0 && seen.unlockTokens.some(token => tokenValid(ring, token, seen.now)) ? 'open' : 'none'
    },
    {
      name: 'client certificate',
      // proven by a private key in the TLS handshake, never guessed (client-certificate.ts)
      guessable: false,
      on: opts.clientCertificates === true,
      find: request => clientCertificateValid(request) ? 'open' : 'none'
    },
    {
      name: 'Immich credential',
      guessable: true,
      on: checker !== undefined && allowCredentials,
      find: request => {
        const credential = immichCredential(request)
        return credential === undefined ? 'none' : confirmed(credential)
      }
    },
    {
      name: 'shared link',
      guessable: true,
      on: checker !== undefined && allowShareLinks,
      // only the requests of SHARE_LINK_REQUESTS, and only with a link Immich confirms
      find: request => {
        const found = shareLinkRequest(request)
        if (found === undefined) return 'none'
        if (found.row.carrier === 'none') return 'open'
        return found.credential === undefined ? 'none' : confirmed(found.credential)
      }
    }
  ]
  const WAYS_IN = ways.filter(way => way.on !== false)

  /** Tries the ways in, in order, skipping the guessable ones during a cool-down. */
  function decide (request: FastifyRequest, seen: Seen, braked: boolean, from = 0): Finding | Promise<Finding> {
    for (let i = from; i < WAYS_IN.length; i++) {
      const way = WAYS_IN[i]
      if (braked && way.guessable) continue
      const found = way.find(request, seen)
      if (found instanceof Promise) {
        return found.then(finding => finding === 'none' ? decide(request, seen, braked, i + 1) : finding)
      }
      if (found !== 'none') return found
    }
    return 'none'
  }

  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.url === UNLOCK_PATH && request.method === 'POST') return done()

    const seen: Seen = { keyHeaders: sentValues(request, HEADER), unlockTokens: takeUnlockCookies(request), now: Date.now() }
    delete request.headers[HEADER]
    delete request.raw.headers[HEADER]
    // outside the gate, brake included; a key or cookie sent along is still kept from Immich
    if (isDiscovery(request)) return done()

    const cooling = (limiter?.retryAfter(brakeKey(request)) ?? 0) > 0
    const conclude = (finding: Finding): void => {
      if (finding === 'open') return done()
      const seconds = cooling ? braked(request, reply) : undefined
      if (seconds !== undefined) {
        if (showsPage(request)) {
          sendPage(reply, 429, safeNext(request.url), brakeMessage(seconds))
          return
        }
        return done(new TooManyFailuresError(seconds))
      }
      if (finding === 'none') return refuse(request, reply, done, false)
      refuse(request, reply, done, true, finding.counted)
    }
    const finding = decide(request, seen, cooling)
    if (!(finding instanceof Promise)) return conclude(finding)
    finding.then(conclude, (error: Error) => {
      // Immich could not say: neither counted nor remembered, and not a refusal either
      request.log.warn({ err: error.cause instanceof Error ? error.cause : error }, 'could not ask Immich whether a credential is valid')
      done(upstreamFailure(error))
    })
  })

  if (cookieMaxAge === 0 || keyless) return

  await fastify.register(async function unlockRoute (scope) {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 },
      (request, body, done) => done(null, new URLSearchParams(body as string)))

    scope.post(UNLOCK_PATH, (request, reply) => {
      const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams()
      const key = form.get('key') ?? ''
      const next = safeNext(form.get('next'))
      // not a guess the client made: neither counted nor braked, and never a cookie
      if (fromAnotherSite(request)) {
        request.log.info({ client: request.forwardedHeaders['x-real-ip'] }, 'unlock form posted from another site; refused, not counted')
        return sendPage(reply, 403, '/', 'A key sent from another site is not accepted; type it here.')
      }
      const seconds = braked(request, reply)
      if (seconds !== undefined) return sendPage(reply, 429, next, brakeMessage(seconds))
      if (!ring.accepts(key)) {
        report('wrong')
        failed(request)
        return sendPage(reply, 403, next, 'That key is not valid.')
      }
      const expiresAt = Date.now() + cookieMaxAge
      // rounded up: Max-Age=0 would tell the browser to drop the cookie at once
      const attributes = [`Max-Age=${Math.ceil(cookieMaxAge / 1000)}`, 'Path=/', 'HttpOnly', 'SameSite=Lax']
      if (isSecure(request)) attributes.push('Secure')
      reply.header('set-cookie', `${COOKIE_NAME}=${tokenFor(key, expiresAt)}; ${attributes.join('; ')}`)
      return reply.code(303).header('location', next).header('cache-control', 'no-store').send()
    })
  })
}, { name: 'immich-proxy-access-key', fastify: '5.x', dependencies: ['immich-proxy-forwarded-headers'] })
