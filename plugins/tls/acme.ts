// Certificates from an ACME CA (Let's Encrypt by default), obtained by the proxy itself with
// acme-client: the account key, the certificate and its key kept in a storage folder, the
// challenges answered on the proxy's own listeners (http-01 on HTTP_PORT, tls-alpn-01 on HTTPS).
import { AsyncLocalStorage } from 'node:async_hooks'
import { execFile } from 'node:child_process'
import { X509Certificate, createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent as HttpsAgent } from 'node:https'
import { dirname, join } from 'node:path'
import { createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { CertificateError, dnsNames, loadCertificatePair, selfSignedPair, type CertificatePair } from './certificates.js'
import { acmeOrdered, type AcmeOrdered } from '../observability/events.js'
import { StorageLock, writeAtomically } from './storage-lock.js'

export type AcmeChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01'

export interface AcmeOptions {
  /** The names the certificate is for; the first is its subject. */
  domains: string[]
  /** The account's contact, for the CA's expiry warnings. */
  email?: string
  /** The CA's ACME directory URL. */
  directory: string
  /** PEM of an extra CA trusted for the ACME server's HTTPS (a private CA, pebble in tests). */
  caFile?: string
  /** Folder of the account key and the certificates; created 0700 if missing. */
  storage: string
  challenge: AcmeChallengeType
  /** For dns-01: run as `<hook> set|clear <domain> <record name> <value>`; exit 0 = done. */
  dnsHook?: string
  /** External account binding, for CAs that require one. */
  externalAccountBinding?: { kid: string, hmacKey: string }
  /** A certificate profile (Let's Encrypt: classic, tlsserver, shortlived), asked for only if the directory lists it. */
  profile?: string
}

/** How long ACME_DNS_HOOK may take to set or clear a record (some wait for DNS propagation). */
const DNS_HOOK_TIMEOUT_MS = 10 * 60_000

/** ACME_DNS_HOOK failed: its exit and the end of what it wrote. */
export class DnsHookError extends Error {}

/** Runs ACME_DNS_HOOK; resolves when it exits 0. */
export async function runDnsHook (hook: string, action: 'set' | 'clear', domain: string, record: string, value: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(hook, [action, domain, record, value], { timeout: DNS_HOOK_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve()
        return
      }
      const how = error.killed === true ? `was stopped after ${DNS_HOOK_TIMEOUT_MS / 1000} s` : typeof error.code === 'number' ? `exited with ${error.code}` : `could not run (${error.message})`
      const said = `${stderr}${stdout}`.trim().split('\n').slice(-5).join(' | ')
      reject(new DnsHookError(`ACME_DNS_HOOK ${hook} ${action} ${domain} ${record} ${how}${said === '' ? '' : `: ${said}`}`))
    })
  })
}

/** The ALPN protocol of tls-alpn-01 (RFC 8737). */
export const ACME_TLS_ALPN = 'acme-tls/1'

/** A certificate is ordered again once less than this share of its lifetime is left. */
const RENEW_WITH_LIFETIME_LEFT = 1 / 3

/** Retries after a failed order: doubling from the first to the last, then staying there. */
const RETRY_FIRST_MS = 60_000
// the renewal check runs when the served certificate falls due, and at least this often
const RENEWAL_CHECK_MAX_MS = 10 * 60_000
const RETRY_LAST_MS = 3_600_000
/** ARI: asked again after the CA's Retry-After, 6 h without one (RFC 9773's advice), within 1 s to 24 h. */
const ARI_DEFAULT_RECHECK_MS = 6 * 3_600_000
const ARI_MAX_RECHECK_MS = 24 * 3_600_000
const ARI_FAILED_RECHECK_MS = 3_600_000
/**
 * Orders per set of names in any hour, restarts included (the attempts are stored): Let's
 * Encrypt allows 5 failed validations per name per hour, and a crash-looping container must not
 * spend them.
 */
export const ORDERS_PER_HOUR = 5
const HOUR_MS = 3_600_000

/** Why an order failed, from the CA's problem type (RFC 8555 section 6.7) or the error. */
export type AcmeFailureCause = 'storage' | 'dns-hook' | 'dns' | 'connection' | 'caa' | 'rate-limit' | 'wrong-answer' | 'tls' | 'account' | 'ca-unreachable' | 'other'

export interface AcmeProblem {
  /** The problem type, without urn:ietf:params:acme:error: */
  type?: string
  detail?: string
  /** When the CA said to come back (Retry-After, or the time a rate-limit message names). */
  retryAt?: number
}

/** The cause of a failed order and what the user can do about it. */
export function explain (error: Error, problem: AcmeProblem | undefined, challenge: AcmeChallengeType): { cause: AcmeFailureCause, advice: string } {
  const type = problem?.type ?? ''
  const text = `${problem?.detail ?? ''} ${error.message}`
  if (['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'ENOTDIR', 'EDQUOT'].includes((error as NodeJS.ErrnoException).code ?? '')) {
    return { cause: 'storage', advice: 'ACME_STORAGE cannot be written: give the folder to the user the proxy runs as, and keep space free' }
  }
  if (error instanceof DnsHookError) {
    return { cause: 'dns-hook', advice: 'the hook failed: run it by hand with the same arguments, as the user the proxy runs as, and check its credentials for the DNS provider' }
  }
  const port = challenge === 'http-01' ? '80' : '443'
  const listener = challenge === 'http-01' ? 'HTTP_PORT' : 'PORT'
  if (type === 'rateLimited' || /rate ?limit|too many/i.test(text)) {
    return { cause: 'rate-limit', advice: 'the CA\'s rate limit: the proxy waits as long as it asks; try changes against ACME_DIRECTORY=letsencrypt-staging first' }
  }
  if (type === 'caa' || /\bCAA\b/.test(text)) {
    return { cause: 'caa', advice: 'a CAA record of the domain forbids this CA: add one allowing it (for Let\'s Encrypt: CAA 0 issue "letsencrypt.org") or remove the CAA records' }
  }
  if (challenge === 'dns-01' && (type === 'dns' || type === 'unauthorized' || /TXT|DNS problem/i.test(text))) {
    return { cause: 'dns', advice: 'the CA did not find the TXT record: ACME_DNS_HOOK must set _acme-challenge.<name> in the zone the internet sees, and exit only once it is published' }
  }
  if (type === 'dns' || /DNS problem|NXDOMAIN|SERVFAIL|no valid (A|AAAA)|looking up (A|AAAA|TXT)/i.test(text)) {
    return { cause: 'dns', advice: 'the CA could not resolve the name: give every name in ACME_DOMAINS an A (and AAAA, if any) record with this host\'s public address' }
  }
  if (type === 'connection' || /connection refused|failed to connect|timeout during connect|firewall|connection reset/i.test(text)) {
    return { cause: 'connection', advice: `the CA could not reach port ${port} of the name's address: open and forward port ${port} to this proxy's ${listener} (the CA validates from the internet)` }
  }
  if (type === 'unauthorized' || type === 'incorrectResponse' || /unauthorized|invalid response|incorrect/i.test(text)) {
    return { cause: 'wrong-answer', advice: `something other than this proxy answered the challenge on port ${port}: check that the name's address and port forwarding lead here` }
  }
  if (type === 'tls') return { cause: 'tls', advice: `the CA's TLS connection to port ${port} failed: check that port ${port} reaches this proxy directly, without TLS terminated in front of it` }
  if (type === 'externalAccountRequired' || type === 'accountDoesNotExist' || type === 'invalidContact') {
    return { cause: 'account', advice: 'the CA refused the account: check ACME_EMAIL and, for CAs that require it, external account binding' }
  }
  if (problem === undefined) {
    return { cause: 'ca-unreachable', advice: 'no answer from the ACME directory: check ACME_DIRECTORY, this host\'s DNS and outbound HTTPS (and ACME_CA_FILE for a private CA)' }
  }
  return { cause: 'other', advice: 'see the CA\'s message; the proxy retries on its own' }
}

/** The time a Retry-After header, or a rate-limit message's "retry after <date>", names. */
function retryAtOf (header: unknown, detail: string | undefined, now = Date.now()): number | undefined {
  if (typeof header === 'string' && header !== '') {
    const seconds = Number(header)
    if (Number.isFinite(seconds) && seconds > 0) return now + seconds * 1000
    const date = Date.parse(header)
    if (!Number.isNaN(date)) return date
  }
  const named = /retry after ([0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:]+(?:\.[0-9]+)?(?: ?UTC|Z)?)/i.exec(detail ?? '')?.[1]
  if (named === undefined) return undefined
  const date = Date.parse(named.replace(' UTC', 'Z').replace(' ', 'T'))
  return Number.isNaN(date) ? undefined : date
}

/**
 * RFC 9773's identifier of a certificate: its Authority Key Identifier and its serial number
 * (the DER integer's bytes), each base64url, joined by a dot.
 */
export async function renewalCertId (cert: Buffer | string): Promise<string> {
  const x509 = await import('@peculiar/x509')
  const leaf = new x509.X509Certificate(cert.toString())
  const keyId = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId
  if (keyId === undefined) throw new Error('the certificate has no Authority Key Identifier')
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${Buffer.from(leaf.serialNumber, 'hex').toString('base64url')}`
}

/** The problem a CA response carries: an error answer, or an authorization or challenge gone invalid. */
export function problemOf (status: number, data: unknown, retryAfter: unknown): AcmeProblem | undefined {
  const body = data as { type?: string, detail?: string, status?: string, error?: { type?: string, detail?: string }, challenges?: Array<{ error?: { type?: string, detail?: string } }> } | undefined
  if (body === undefined || body === null || typeof body !== 'object') return undefined
  const found = status >= 400
    ? { type: body.type, detail: body.detail }
    : body.status === 'invalid' ? body.error ?? body.challenges?.find(challenge => challenge.error !== undefined)?.error : undefined
  if (found === undefined || (found.type === undefined && found.detail === undefined)) return undefined
  const type = found.type?.replace(/^urn:ietf:params:acme:error:/, '')
  return { type, detail: found.detail, retryAt: retryAtOf(retryAfter, found.detail) }
}

// what may name a file: an ACME token is base64url (RFC 8555 §8.3), a name a DNS name
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/
const DNS_NAME = /^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?$/

type SharedChallenge = 'http-01' | 'tls-alpn-01'

/**
 * The challenges being answered right now, by this process or another on the same ACME_STORAGE:
 * an http-01 token's key authorization, a tls-alpn-01 name's challenge certificate. Anything else
 * is unknown (404, or no handshake).
 */
export class AcmeChallenges {
  private readonly http = new Map<string, string>()
  private readonly tlsAlpn = new Map<string, SecureContext>()

  /**
   * `directory`: where the challenges in progress are also written (ACME_STORAGE), so that every
   * proxy sharing the storage answers them, not only the one ordering: behind a load balancer the
   * CA's validation reaches any of them (and Let's Encrypt validates from several places at once).
   */
  constructor (private readonly directory?: string) {}

  http01 (token: string): string | undefined {
    return this.http.get(token) ?? readShared(this.sharedFile('http-01', token))?.toString('utf8')
  }

  tlsAlpn01 (servername: string): SecureContext | undefined {
    const name = servername.toLowerCase()
    const own = this.tlsAlpn.get(name)
    if (own !== undefined) return own
    // read only when a client offers acme-tls/1: a CA's validator, a few times per order
    const pem = readShared(this.sharedFile('tls-alpn-01', name))
    return pem === undefined ? undefined : createSecureContext({ cert: pem, key: pem })
  }

  setHttp01 (token: string, keyAuthorization: string): void {
    this.http.set(token, keyAuthorization)
    share(this.sharedFile('http-01', token), keyAuthorization)
  }

  clearHttp01 (token: string): void {
    this.http.delete(token)
    unshare(this.sharedFile('http-01', token))
  }

  setTlsAlpn01 (servername: string, pair: CertificatePair): void {
    const name = servername.toLowerCase()
    this.tlsAlpn.set(name, createSecureContext({ cert: pair.cert, key: pair.key }))
    share(this.sharedFile('tls-alpn-01', name), Buffer.concat([Buffer.from(pair.cert), Buffer.from('\n'), Buffer.from(pair.key)]))
  }

  clearTlsAlpn01 (servername: string): void {
    const name = servername.toLowerCase()
    this.tlsAlpn.delete(name)
    unshare(this.sharedFile('tls-alpn-01', name))
  }

  /** Where a challenge is shared; none without a storage, or for a name that is not a token or a DNS name. */
  private sharedFile (type: SharedChallenge, name: string): string | undefined {
    if (this.directory === undefined) return undefined
    if (type === 'http-01') return TOKEN.test(name) ? join(this.directory, type, name) : undefined
    return DNS_NAME.test(name) ? join(this.directory, type, `${name}.pem`) : undefined
  }

  /**
   * Options for the HTTPS server that answer tls-alpn-01 on it: a client offering `acme-tls/1`
   * gets the challenge certificate of the name it asks for, every other client the server's own
   * certificate and its protocols (`protocols`, in the server's order of preference, as Node's
   * ALPNProtocols would choose). OpenSSL asks for the protocol before the certificate in TLS 1.3,
   * which the CAs' validators speak, so the SNI callback knows what the ALPN callback chose; a
   * TLS 1.2 client offering acme-tls/1 is refused rather than shown the wrong certificate.
   */
  serverOptions (protocols: string[]): {
    ALPNCallback: (this: TLSSocket, hello: { servername: string, protocols: string[] }) => string | undefined
    SNICallback: (this: TLSSocket, servername: string, callback: (error: Error | null, context?: SecureContext) => void) => void
  } {
    const challenges = this
    const chosen = new WeakMap<TLSSocket, SecureContext>()
    const certificateChosen = new WeakSet<TLSSocket>()
    return {
      ALPNCallback ({ servername, protocols: offered }) {
        if (offered.includes(ACME_TLS_ALPN)) {
          const context = typeof servername === 'string' ? challenges.tlsAlpn01(servername) : undefined
          if (context === undefined || certificateChosen.has(this)) return undefined
          chosen.set(this, context)
          return ACME_TLS_ALPN
        }
        return protocols.find(protocol => offered.includes(protocol))
      },
      SNICallback (servername, callback) {
        certificateChosen.add(this)
        callback(null, chosen.get(this))
      }
    }
  }
}

function readShared (file: string | undefined): Buffer | undefined {
  return file === undefined ? undefined : readIfThere(file)
}

// best effort: the proxy ordering answers from memory whatever the storage does
function share (file: string | undefined, content: string | Buffer): void {
  if (file === undefined) return
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    writeAtomically(file, content)
  } catch {}
}

function unshare (file: string | undefined): void {
  if (file !== undefined) rmSync(file, { force: true })
}

function readIfThere (file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** The certificate's dates, and whether it names every domain (a wildcard as itself). */
export function describe (cert: Buffer | string, domains: string[]): { notBefore: Date, notAfter: Date, covers: boolean } {
  const leaf = new X509Certificate(cert)
  const names = dnsNames(leaf).map(name => name.toLowerCase())
  return {
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    covers: domains.every(domain => domain.startsWith('*.') ? names.includes(domain) : leaf.checkHost(domain, { wildcards: false }) !== undefined)
  }
}

/** The folder of one CA's certificates and order record, so that staging's are never served once production is asked for. */
export function caFolder (options: Pick<AcmeOptions, 'storage' | 'directory'>): string {
  const url = new URL(options.directory)
  return join(options.storage, `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '_'))
}

const CERT_FILE = 'fullchain.pem'
const KEY_FILE = 'privkey.pem'

/** The stored pair, if both files are there and match; a half-finished write reads as none. */
function readPair (directory: string): CertificatePair | undefined {
  try {
    return loadCertificatePair({ certFile: join(directory, CERT_FILE), keyFile: join(directory, KEY_FILE) })
  } catch {
    return undefined
  }
}

/** Good enough to serve without ordering: names every domain and has over a third of its life left. */
export function stillGood (cert: Buffer, domains: string[], now = Date.now()): boolean {
  const described = describe(cert, domains)
  return described.covers && dueIn(described, now) > 0
}

/** Milliseconds until a third of the certificate's lifetime is left (so 6-day certificates renew after 4 days); 0 when past. */
export function renewalDueIn (cert: Buffer, now = Date.now()): number {
  return dueIn(describe(cert, []), now)
}

function dueIn ({ notBefore, notAfter }: { notBefore: Date, notAfter: Date }, now: number): number {
  const lifetime = notAfter.getTime() - notBefore.getTime()
  return Math.max(0, notAfter.getTime() - lifetime * RENEW_WITH_LIFETIME_LEFT - now)
}

// acme-client sends every request through its one axios instance: an extra CA is added to the
// agent of that instance, with the system's roots, for this process's ACME traffic only.
const trustedForAcme = new Map<string, string>()

/**
 * The order a request to the CA belongs to: where its last problem goes, its log, and the signal
 * of its proxy's close, with the requests in flight that it ends.
 */
interface OrderContext { problem?: AcmeProblem, log?: FastifyBaseLogger, closed?: AbortSignal, inFlight?: Set<RetriedRequest> }
/** acme-client counts its retries of a request on the request's config. */
interface RetriedRequest { retryAttempt?: number, signal?: unknown }
const orderContext = new AsyncLocalStorage<OrderContext>()
let watchingResponses = false

/** The proxy is closed: a request for it is not sent, nor retried. */
class AcmeClosedError extends Error {
  constructor () { super('the proxy was closed') }
}

/**
 * Ends every request of `context` once `closed` fires: cut, and not retried (acme-client would try
 * again for minutes after the proxy has closed, keeping an embedding app's process alive).
 */
async function untilClosed<T> (context: OrderContext, closed: AbortSignal, work: () => Promise<T>): Promise<T> {
  context.closed = closed
  context.inFlight = new Set()
  const stop = (): void => {
    for (const request of context.inFlight ?? []) request.retryAttempt = Number.POSITIVE_INFINITY
  }
  closed.addEventListener('abort', stop, { once: true })
  try {
    return await orderContext.run(context, work)
  } finally {
    closed.removeEventListener('abort', stop)
  }
}

/**
 * acme-client turns the CA's problem documents into plain messages: its axios instance's
 * responses are read here for their type and Retry-After. Its own retries (network errors, 429 and
 * 5xx: up to 5, each after the Retry-After the CA sends, else 5 s more each time) are warnings.
 */
function watchResponses (acme: AcmeClientModule): void {
  if (watchingResponses) return
  watchingResponses = true
  acme.axios.interceptors.request.use(config => {
    const context = orderContext.getStore()
    if (context?.closed === undefined) return config
    // thrown without a config, so that acme-client's retry interceptor passes it on
    if (context.closed.aborted) throw new AcmeClosedError()
    config.signal = context.closed
    context.inFlight?.add(config)
    return config
  })
  acme.axios.interceptors.response.use(response => {
    const context = orderContext.getStore()
    context?.inFlight?.delete(response.config)
    const problem = context === undefined ? undefined : problemOf(response.status, response.data, response.headers['retry-after'])
    if (context !== undefined && problem !== undefined) context.problem = problem
    return response
  })
  acme.setLogger(message => {
    if (/retry attempt/i.test(message)) orderContext.getStore()?.log?.warn({ acmeClient: message }, 'ACME: a request to the CA failed or was asked to wait; acme-client tries again')
  })
}

const ATTEMPTS_FILE = 'orders.json'
const CHALLENGES_FOLDER = 'challenges'
const LOCK_FILE = 'order.lock'

type AcmeClientModule = typeof import('acme-client')

/** What the proxy reads of an ACME directory beyond acme-client (profiles; RFC 9773's renewalInfo). */
interface AcmeDirectory {
  meta?: { profiles?: Record<string, string> }
  renewalInfo?: string
}

export interface AcmeEvents {
  /** A CA-issued certificate is ready to serve (the stored one at start, or a new one). */
  onCertificate: (pair: CertificatePair) => void
}

/**
 * One set of domains' certificate: the stored one when still good, else a temporary self-signed
 * one until the CA's is obtained. `start()` orders when needed (after the listeners answer).
 */
export class AcmeCertificates {
  readonly challenges: AcmeChallenges
  /** The pair to serve now; `issued` once it is the CA's. */
  current: CertificatePair
  issued: boolean
  private readonly listeners: Array<(pair: CertificatePair) => void> = []
  private timer: NodeJS.Timeout | undefined
  private renewal: NodeJS.Timeout | undefined
  private failures = 0
  /** Aborted by close(): ends the timers' work and cuts the requests to the CA in flight. */
  private readonly closing = new AbortController()
  private directoryRead: Promise<AcmeDirectory> | undefined
  /** What ARI said about `cert`: when to renew (none: the lifetime rule) and when to ask again. */
  private ari: { cert: Buffer, renewAt?: number, askAgainAt: number, window?: string, certId?: string } | undefined
  private profileWarned = false
  private log: FastifyBaseLogger | undefined

  private constructor (readonly options: AcmeOptions, private readonly directory: string, current: CertificatePair, issued: boolean) {
    this.current = current
    this.issued = issued
    this.challenges = new AcmeChallenges(join(directory, CHALLENGES_FOLDER))
  }

  /**
   * Reads the stored certificate; a temporary self-signed one when none is still good. Throws
   * CertificateError naming ACME_STORAGE when the folder cannot be written: found at start, not
   * as a failed order after the CA has validated.
   */
  static async open (options: AcmeOptions): Promise<AcmeCertificates> {
    const directory = caFolder(options)
    try {
      mkdirSync(directory, { recursive: true, mode: 0o700 })
      const probe = join(directory, `.write-test-${process.pid}`)
      writeFileSync(probe, '', { mode: 0o600 })
      rmSync(probe)
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException
      throw new CertificateError('ACME_STORAGE', `${JSON.stringify(options.storage)} cannot be written (${code ?? (error as Error).message}): the account and certificates are kept there. ` +
        'Give it to the user the proxy runs as (the image: node, uid 1000; docker-compose.yml\'s named volume is), or choose another folder')
    }
    const stored = readPair(directory)
    return stored !== undefined && stillGood(stored.cert, options.domains)
      ? new AcmeCertificates(options, directory, stored, true)
      : new AcmeCertificates(options, directory, await selfSignedPair(options.domains), false)
  }

  private get closed (): boolean { return this.closing.signal.aborted }
  private get certFile (): string { return join(this.directory, CERT_FILE) }
  private get keyFile (): string { return join(this.directory, KEY_FILE) }

  onCertificate (listener: (pair: CertificatePair) => void): void {
    this.listeners.push(listener)
  }

  /** Orders a certificate unless the one served is the CA's and still good; retries failures. */
  start (log: FastifyBaseLogger): void {
    this.log = log
    // said at start, not only at the next order, which may be weeks away
    if (this.options.profile !== undefined) {
      import('acme-client').then(async acme => await this.profileToAsk(acme)).catch((error: Error) => {
        log.warn({ err: { message: error.message } }, 'ACME: the directory could not be read to check ACME_PROFILE; checked again at the next order')
      })
    }
    if (this.issued) {
      const { notAfter } = describe(this.current.cert, this.options.domains)
      log.info({ domains: this.options.domains, expires: notAfter.toISOString() }, 'ACME: serving the stored certificate; no order needed')
      this.watchRenewal()
      return
    }
    log.warn({ domains: this.options.domains }, 'ACME: serving a temporary self-signed certificate while one is ordered')
    this.order()
  }

  /** The CA's directory, read once per process (acme-client reads its own copy too). */
  private async directoryDocument (acme: AcmeClientModule): Promise<AcmeDirectory> {
    this.trustCa(acme)
    this.directoryRead ??= acme.axios.get<AcmeDirectory>(this.options.directory).then(response => {
      if (response.status !== 200 || typeof response.data !== 'object' || response.data === null) {
        throw new Error(`the ACME directory ${this.options.directory} answered ${response.status}`)
      }
      return response.data
    })
    this.directoryRead.catch(() => { this.directoryRead = undefined })
    return await this.directoryRead
  }

  /** ACME_PROFILE if the CA offers it; otherwise undefined, with one warning naming what it offers. */
  private async profileToAsk (acme: AcmeClientModule): Promise<string | undefined> {
    const profile = this.options.profile
    if (profile === undefined) return undefined
    const offered = Object.keys((await this.directoryDocument(acme)).meta?.profiles ?? {})
    if (offered.includes(profile)) return profile
    if (!this.profileWarned) {
      this.profileWarned = true
      this.log?.warn({ profile, offered }, `ACME: ACME_PROFILE=${profile} is not a profile this CA offers (${offered.length === 0 ? 'it offers none' : `it offers ${offered.join(', ')}`}); ordering without one, the CA's default`)
    }
    return undefined
  }

  close (): void {
    this.closing.abort()
    clearTimeout(this.timer)
    clearTimeout(this.renewal)
  }

  /**
   * Orders a new certificate once the served one has a third of its lifetime left, checking when
   * it falls due and at least every 10 minutes (a clock that jumps, a suspended host). A renewal
   * that fails keeps the current certificate in service and retries like a first order.
   */
  private watchRenewal (): void {
    clearTimeout(this.renewal)
    if (this.closed) return
    const now = Date.now()
    const ari = this.ari?.cert === this.current.cert ? this.ari : undefined
    // the CA's window when it gives one (RFC 9773), else a third of the lifetime left
    const dueAt = ari?.renewAt ?? now + renewalDueIn(this.current.cert, now)
    if (dueAt <= now) {
      const { notAfter } = describe(this.current.cert, this.options.domains)
      this.log?.info({ domains: this.options.domains, expires: notAfter.toISOString() }, ari?.renewAt !== undefined
        ? 'ACME: the CA\'s renewal window (ARI) has come; renewing'
        : 'ACME: a third of the certificate\'s lifetime is left; renewing')
      this.order()
      return
    }
    if (ari === undefined || ari.askAgainAt <= now) {
      untilClosed({ log: this.log }, this.closing.signal, async () => await this.askRenewalInfo()).catch(() => {}).finally(() => this.watchRenewal())
      return
    }
    this.renewal = setTimeout(() => this.watchRenewal(), Math.min(dueAt, ari.askAgainAt, now + RENEWAL_CHECK_MAX_MS) - now).unref()
  }

  /**
   * Asks the CA's renewalInfo (RFC 9773) when to renew the served certificate: a moment chosen at
   * random in its suggested window (now if the window has passed: a revocation, say), asked again
   * after its Retry-After. A CA without ARI, or one that fails to answer, leaves the lifetime rule.
   */
  private async askRenewalInfo (): Promise<void> {
    const cert = this.current.cert
    const now = Date.now()
    try {
      const acme: AcmeClientModule = await import('acme-client')
      const url = (await this.directoryDocument(acme)).renewalInfo
      if (url === undefined) {
        this.ari = { cert, askAgainAt: Number.POSITIVE_INFINITY }
        return
      }
      const certId = await renewalCertId(cert)
      const response = await acme.axios.get<{ suggestedWindow?: { start?: string, end?: string }, explanationURL?: string }>(`${url.replace(/\/$/, '')}/${certId}`, { validateStatus: () => true })
      const retryAt = retryAtOf(response.headers['retry-after'], undefined, now)
      const askAgainAt = Math.min(Math.max(retryAt ?? now + ARI_DEFAULT_RECHECK_MS, now + 1000), now + ARI_MAX_RECHECK_MS)
      const start = Date.parse(response.data?.suggestedWindow?.start ?? '')
      const end = Date.parse(response.data?.suggestedWindow?.end ?? '')
      if (response.status !== 200 || Number.isNaN(start) || Number.isNaN(end) || end < start) {
        this.ari = { cert, askAgainAt: Math.max(askAgainAt, now + ARI_FAILED_RECHECK_MS) }
        this.log?.warn({ status: response.status, renewalInfo: url }, 'ACME: the CA\'s renewal information (ARI) could not be read; renewing by the certificate\'s lifetime meanwhile')
        return
      }
      const renewAt = end <= now ? now : start + Math.random() * (end - start)
      const changed = this.ari?.cert !== cert || this.ari.window !== `${start}/${end}`
      this.ari = { cert, renewAt, askAgainAt, window: `${start}/${end}`, certId }
      if (changed) {
        const fields = { domains: this.options.domains, window: { start: new Date(start).toISOString(), end: new Date(end).toISOString() }, renewAt: new Date(renewAt).toISOString(), explanationURL: response.data.explanationURL }
        if (end <= now) this.log?.warn(fields, 'ACME: the CA asks for this certificate to be renewed now (ARI), e.g. after a revocation')
        else this.log?.info(fields, 'ACME: renewal scheduled in the CA\'s window (ARI)')
      }
    } catch (error) {
      this.ari = { cert, askAgainAt: now + ARI_FAILED_RECHECK_MS }
      this.log?.warn({ err: { message: (error as Error).message } }, 'ACME: the CA\'s renewal information (ARI) could not be read; renewing by the certificate\'s lifetime meanwhile')
    }
  }

  /**
   * Milliseconds until an order may go out: 0 unless ORDERS_PER_HOUR orders for any of these
   * names went out in the last hour (by this process or before a restart).
   */
  private orderSlotIn (now = Date.now()): number {
    const recent = this.attempts(now).filter(attempt => attempt.domains.some(domain => this.options.domains.includes(domain)))
    if (recent.length < ORDERS_PER_HOUR) return 0
    return Math.max(0, Math.min(...recent.map(attempt => attempt.at)) + HOUR_MS - now)
  }

  /** The order attempts of the last hour, as stored; an unreadable record counts as none. */
  private attempts (now = Date.now()): Array<{ at: number, domains: string[] }> {
    try {
      const stored = JSON.parse(readFileSync(join(this.directory, ATTEMPTS_FILE), 'utf8')) as unknown
      if (!Array.isArray(stored)) return []
      return stored.filter((attempt): attempt is { at: number, domains: string[] } =>
        typeof attempt?.at === 'number' && Array.isArray(attempt.domains) && now - attempt.at < HOUR_MS && attempt.at <= now)
    } catch {
      return []
    }
  }

  private recordAttempt (now = Date.now()): void {
    mkdirSync(this.directory, { recursive: true, mode: 0o700 })
    writeAtomically(join(this.directory, ATTEMPTS_FILE), JSON.stringify([...this.attempts(now), { at: now, domains: this.options.domains }]))
  }

  private order (): void {
    if (this.closed) return
    const context: OrderContext = { log: this.log }
    this.orderOnce(context).catch((error: Error) => this.failed(error, context.problem))
  }

  /** Puts a CA-issued pair in service (new connections get it) and watches for its renewal. */
  private serve (pair: CertificatePair): void {
    this.failures = 0
    this.current = pair
    this.issued = true
    for (const listener of this.listeners) listener(pair)
    this.watchRenewal()
  }

  /**
   * One order, under the storage's lock: proxies sharing ACME_STORAGE order once, and the others
   * serve what it stored. Waits while another holds the lock, then reads the storage first.
   */
  private async orderOnce (context: OrderContext): Promise<void> {
    mkdirSync(this.directory, { recursive: true, mode: 0o700 })
    const lock = await StorageLock.acquire(join(this.directory, LOCK_FILE), () => this.closed, holder => {
      this.log?.info({ domains: this.options.domains, holder }, 'ACME: another proxy sharing ACME_STORAGE is ordering; waiting for it')
    })
    if (lock === undefined) return
    try {
      const stored = readPair(this.directory)
      if (stored !== undefined && !stored.cert.equals(this.current.cert) && stillGood(stored.cert, this.options.domains)) {
        const { notAfter } = describe(stored.cert, this.options.domains)
        this.log?.info({ domains: this.options.domains, expires: notAfter.toISOString() }, 'ACME: serving the certificate another proxy stored; no order needed')
        this.serve(stored)
        return
      }
      const waitMs = this.orderSlotIn()
      if (waitMs > 0) {
        this.log?.warn({ domains: this.options.domains, retryInSeconds: Math.ceil(waitMs / 1000), ordersPerHour: ORDERS_PER_HOUR },
          `ACME: ${ORDERS_PER_HOUR} orders for these names in the last hour; the next waits (the CA's limits on failed validations)`)
        this.timer = setTimeout(() => this.order(), waitMs).unref()
        return
      }
      this.recordAttempt()
      const pair = await untilClosed(context, this.closing.signal, async () => await this.obtain())
      acmeOrdered.publish({ result: 'issued' } satisfies AcmeOrdered)
      if (!this.closed) this.serve(pair)
    } finally {
      lock.release()
    }
  }

  /** Logs why, with what to do, and tries again after the back-off or the CA's Retry-After. */
  private failed (error: Error, problem: AcmeProblem | undefined): void {
    if (this.closed) return
    acmeOrdered.publish({ result: 'failed' } satisfies AcmeOrdered)
    const backoffMs = Math.min(RETRY_FIRST_MS * 2 ** this.failures++, RETRY_LAST_MS)
    const retryMs = Math.max(backoffMs, (problem?.retryAt ?? 0) - Date.now())
    const { cause, advice } = explain(error, problem, this.options.challenge)
    this.log?.error({
      err: { message: error.message },
      cause,
      problemType: problem?.type,
      domains: this.options.domains,
      retryInSeconds: Math.ceil(retryMs / 1000)
    }, `ACME: no certificate obtained (${cause}): ${advice}. The current certificate stays in service`)
    this.timer = setTimeout(() => this.order(), retryMs).unref()
  }

  private async obtain (): Promise<CertificatePair> {
    const { domains, email, challenge: wanted } = this.options
    // loaded only here: acme-client and its X.509 and HTTP libraries are start-up time for no one else
    const acme: AcmeClientModule = await import('acme-client')
    watchResponses(acme)
    this.trustCa(acme)
    mkdirSync(this.directory, { recursive: true, mode: 0o700 })
    const accountKey = await this.accountKey(acme)
    const client = new acme.Client({ directoryUrl: this.options.directory, accountKey, externalAccountBinding: this.options.externalAccountBinding })
    // An account this key already has is looked up rather than registered again: auto() would
    // "update" it with termsOfServiceAgreed alone, which a strict CA (pebble) refuses as an empty
    // update once the account exists, so every order after the first failed without ACME_EMAIL.
    const existing = await client.createAccount({ onlyReturnExisting: true }).catch(() => undefined)
    if (existing !== undefined && email !== undefined && !(existing.contact ?? []).includes(`mailto:${email}`)) {
      await client.updateAccount({ contact: [`mailto:${email}`] })
    }
    // auto() places the order itself, with identifiers only: the profile, and with ARI the
    // certificate this one replaces (RFC 9773), join its payload here
    const profile = await this.profileToAsk(acme)
    const replaces = this.issued && this.ari?.cert === this.current.cert ? this.ari.certId : undefined
    if (profile !== undefined || replaces !== undefined) {
      const createOrder = client.createOrder.bind(client)
      client.createOrder = async data => await createOrder({ ...data, ...(profile === undefined ? {} : { profile }), ...(replaces === undefined ? {} : { replaces }) } as typeof data)
    }
    const [key, csr] = await acme.crypto.createCsr({ commonName: domains[0], altNames: domains }, await acme.crypto.createPrivateEcdsaKey())
    this.log?.info({ domains, challenge: wanted, directory: this.options.directory, profile, replaces }, 'ACME: ordering a certificate')
    const cert = await client.auto({
      csr,
      email,
      termsOfServiceAgreed: true,
      // the CA checks; a check from inside often fails where the CA's succeeds (NAT, split DNS)
      skipChallengeVerification: true,
      challengePriority: [wanted],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type !== wanted) throw new Error(`the CA offers no ${wanted} challenge for ${authz.identifier.value}`)
        if (challenge.type === 'http-01') this.challenges.setHttp01(challenge.token, keyAuthorization)
        else if (challenge.type === 'dns-01') {
          // for *.example.org the CA asks about example.org: the record is the same
          const domain = authz.identifier.value
          await runDnsHook(this.options.dnsHook ?? '', 'set', domain, `_acme-challenge.${domain}`, keyAuthorization)
          this.log?.info({ domain, record: `_acme-challenge.${domain}` }, 'ACME: TXT record set by ACME_DNS_HOOK')
        } else {
          // an EC key like the served certificate's: OpenSSL keeps one certificate per key type, and
          // an RSA challenge certificate would sit beside the EC one, which an ECDSA-first client
          // such as the CA's validator would still be shown
          const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey())
          this.challenges.setTlsAlpn01(authz.identifier.value, { cert: alpnCert, key: alpnKey })
        }
      },
      challengeRemoveFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type === 'http-01') this.challenges.clearHttp01(challenge.token)
        else if (challenge.type === 'dns-01') {
          const domain = authz.identifier.value
          // a record left behind does no harm beyond clutter: said, not fatal
          await runDnsHook(this.options.dnsHook ?? '', 'clear', domain, `_acme-challenge.${domain}`, keyAuthorization)
            .catch((error: Error) => this.log?.warn({ err: { message: error.message } }, 'ACME: the TXT record could not be cleared'))
        } else this.challenges.clearTlsAlpn01(authz.identifier.value)
      }
    })
    // the key first: a crash between the two leaves a pair that does not match, read as none
    writeAtomically(this.keyFile, key)
    writeAtomically(this.certFile, cert)
    const { notAfter } = describe(cert, domains)
    this.log?.info({ domains, expires: notAfter.toISOString(), fingerprint256: new X509Certificate(cert).fingerprint256 },
      'ACME: certificate issued; new connections use it')
    return { cert: Buffer.from(cert), key }
  }

  private async accountKey (acme: AcmeClientModule): Promise<Buffer> {
    const file = join(this.options.storage, 'account.key')
    const existing = readIfThere(file)
    if (existing !== undefined) return existing
    const key = await acme.crypto.createPrivateEcdsaKey()
    writeAtomically(file, key)
    return key
  }

  private trustCa (acme: AcmeClientModule): void {
    const file = this.options.caFile
    if (file === undefined) return
    const pem = readFileSync(file, 'utf8')
    const fingerprint = createHash('sha256').update(pem).digest('hex')
    if (trustedForAcme.has(fingerprint)) return
    trustedForAcme.set(fingerprint, pem)
    acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: [...rootCertificates, ...trustedForAcme.values()] })
  }
}
