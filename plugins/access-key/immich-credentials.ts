// The gate's way in for Immich's own users: a request carrying a session token or an API key
// that Immich confirms passes without the access key (the CLI and the apps cannot send one).
// The same checker confirms shared links for shared-links.ts (GET /api/shared-links/me).
//
// Where Immich reads credentials, in its order (server/src/services/auth.service.ts, validate();
// test/fixtures/immich-auth.json): a share key or slug first (`x-immich-share-key`, `?key=`; `x-immich-share-
// slug`, `?slug=`), then a session token (`x-immich-user-token`, `x-immich-session-token`,
// `?sessionKey=`, `Authorization: Bearer`, cookie `immich_access_token`), then an API key
// (`x-api-key`, `?apiKey=`). The first one present is the one Immich judges: a request carrying
// a share credential is the shared link's, whatever else it carries, so no session or API key
// is looked for there. `immich_is_authenticated` is a hint for the web app, never a credential.
//
// Immich judges: POST /api/auth/validateToken answers 200 `{"authStatus":true}` for a valid
// session or API key and 401 for an unknown one. A 403 "Missing required permission" means
// Immich knew the credential and refused the permission (an API key limited to some
// permissions, on servers whose validateToken asks for all of them): the credential is real, so
// the gate opens; Immich still decides every request itself. Answers are cached under a hash of the credential (never the
// credential): valid for a minute, invalid for ten seconds; one question in flight per
// credential, however many requests carry it.
import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { LRUCache } from 'lru-cache'
import { askImmich, type ImmichQuestion } from '../forwarding/ask-immich.js'

export type CredentialKind = 'session' | 'api-key' | 'share-key' | 'share-slug'

export interface ImmichCredential {
  kind: CredentialKind
  value: string
}

export interface CredentialCheckOptions {
  /** How long Immich's yes is trusted, ms. Default 60 000. */
  validFor?: number
  /** How long Immich's no is remembered, ms. Default 10 000. */
  invalidFor?: number
  /** Credentials remembered at most (a hash and a flag each). Default 10 000. */
  maxEntries?: number
  /** Longest wait for Immich's answer, ms. Default 10 000. */
  timeout?: number
}

export const SESSION_COOKIE = 'immich_access_token'

/** One value of a header as Node joined it: an array (a repeated field) takes the first, as Immich does. */
function first (value: string | string[] | undefined): string | undefined {
  const one = Array.isArray(value) ? value[0] : value
  return one === undefined || one === '' ? undefined : one
}

function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined || !header.includes(name)) return undefined
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=')
    if (at !== -1 && pair.slice(0, at).trim() === name) {
      const value = pair.slice(at + 1).trim().replace(/^"(.*)"$/, '$1')
      try {
        return decodeURIComponent(value) || undefined
      } catch {
        return value || undefined
      }
    }
  }
  return undefined
}

function bearer (authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const [scheme, token] = authorization.split(' ')
  return scheme.toLowerCase() === 'bearer' && token !== undefined && token !== '' ? token : undefined
}

/** The query of the request target as sent, or undefined without one. */
export function queryOf (url: string): URLSearchParams | undefined {
  const at = url.indexOf('?')
  return at === -1 ? undefined : new URLSearchParams(url.slice(at + 1))
}

/** The shared link's key or slug the request carries, which Immich reads before anything else. */
export function shareCredential (request: FastifyRequest, query = queryOf(request.url)): ImmichCredential | undefined {
  const headers = request.headers
  const key = first(headers['x-immich-share-key']) ?? (query?.get('key') || undefined)
  if (key !== undefined) return { kind: 'share-key', value: key }
  const slug = first(headers['x-immich-share-slug']) ?? (query?.get('slug') || undefined)
  return slug === undefined ? undefined : { kind: 'share-slug', value: slug }
}

/** The session token or API key Immich would judge this request by, if any. */
export function immichCredential (request: FastifyRequest): ImmichCredential | undefined {
  const headers = request.headers
  const query = queryOf(request.url)
  if (shareCredential(request, query) !== undefined) return undefined
  const session = first(headers['x-immich-user-token']) ?? first(headers['x-immich-session-token']) ??
    (query?.get('sessionKey') || undefined) ?? bearer(first(headers.authorization)) ??
    cookieValue(first(headers.cookie), SESSION_COOKIE)
  if (session !== undefined) return { kind: 'session', value: session }
  const apiKey = first(headers['x-api-key']) ?? (query?.get('apiKey') || undefined)
  if (apiKey !== undefined) return { kind: 'api-key', value: apiKey }
  return undefined
}

// Immich 2.6 and later say the first, earlier versions the second
const PASSWORD_NEEDED = new Set(['Password required', 'Invalid password'])

/**
 * What Immich is asked: POST /api/auth/validateToken with the token in one header whatever form
 * the client used (Immich judges it alike in each), or GET /api/shared-links/me for a link.
 */
function questionFor (credential: ImmichCredential): ImmichQuestion {
  switch (credential.kind) {
    case 'session': return { method: 'POST', path: '/api/auth/validateToken', headers: { 'x-immich-user-token': credential.value, 'content-length': '0' } }
    case 'api-key': return { method: 'POST', path: '/api/auth/validateToken', headers: { 'x-api-key': credential.value, 'content-length': '0' } }
    case 'share-key': return { method: 'GET', path: `/api/shared-links/me?key=${encodeURIComponent(credential.value)}`, headers: {} }
    case 'share-slug': return { method: 'GET', path: `/api/shared-links/me?slug=${encodeURIComponent(credential.value)}`, headers: {} }
  }
}

function jsonOf (body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body)
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** Immich could not be asked (unreachable, silent, or an answer that is neither yes nor no). */
export class ImmichUnavailableError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ImmichUnavailableError'
  }
}

/**
 * Asks Immich whether credentials are valid, through `dispatcher` (the proxy's own pool),
 * remembering the answers. `check` resolves true or false, and rejects with the cause when
 * Immich could not answer: nothing is remembered then.
 */
export class CredentialChecker {
  readonly validFor: number
  readonly invalidFor: number
  readonly timeout: number
  private readonly cache: LRUCache<string, boolean, ImmichCredential>

  constructor (private readonly dispatcher: Dispatcher, options: CredentialCheckOptions = {}) {
    this.validFor = options.validFor ?? 60_000
    this.invalidFor = options.invalidFor ?? 10_000
    this.timeout = options.timeout ?? 10_000
    this.cache = new LRUCache<string, boolean, ImmichCredential>({
      max: options.maxEntries ?? 10_000,
      ttl: this.validFor,
      // lru-cache's fetch shares one call among concurrent callers of a key, and drops the entry
      // when the call rejects
      fetchMethod: async (_hash, _stale, { options: entry, context }) => {
        const valid = await this.ask(context)
        entry.ttl = valid ? this.validFor : this.invalidFor
        return valid
      }
    })
  }

  /** The cache key: a hash, so that no credential sits in the process's memory longer than its request. */
  static hash (credential: ImmichCredential): string {
    return createHash('sha256').update(`${credential.kind}\0${credential.value}`).digest('base64url')
  }

  /**
   * Immich's verdict on `credential` (whose hash is `hash`): at once when remembered, else a
   * promise of Immich's answer, shared with the callers asking meanwhile.
   */
  verdict (credential: ImmichCredential, hash = CredentialChecker.hash(credential)): boolean | Promise<boolean> {
    return this.cache.get(hash) ?? this.cache.fetch(hash, { context: credential }).then(valid => valid === true)
  }

  private async ask (credential: ImmichCredential): Promise<boolean> {
    const question = questionFor(credential)
    let answer
    try {
      answer = await askImmich(this.dispatcher, question, this.timeout)
    } catch (error) {
      throw new ImmichUnavailableError('Immich could not be asked whether a credential is valid', { cause: error })
    }
    const said = jsonOf(answer.body)
    if (credential.kind === 'share-key' || credential.kind === 'share-slug') {
      if (answer.statusCode === 200 && typeof said?.id === 'string') return true
      // a link with a password: Immich knows it and asks for the password (the page shows its form)
      if (answer.statusCode === 401 && PASSWORD_NEEDED.has(String(said?.message))) return true
      if (answer.statusCode === 401) return false
      throw new ImmichUnavailableError(`Immich answered ${answer.statusCode} to GET /api/shared-links/me, which is neither a yes nor a no`)
    }
    // Only Immich's own yes opens: anything else answering 200 at UPSTREAM_URL (a web page
    // served for every path) must not open the gate to any token.
    if (answer.statusCode === 200 && said?.authStatus === true) return true
    if (answer.statusCode === 403 && typeof said?.message === 'string' && said.message.startsWith('Missing required permission')) return true
    if (answer.statusCode === 401) return false
    throw new ImmichUnavailableError(`Immich answered ${answer.statusCode} to POST /api/auth/validateToken, which is neither a yes nor a no`)
  }
}
