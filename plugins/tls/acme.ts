// Certificates from an ACME CA (Let's Encrypt by default), obtained by the proxy itself with
// acme-client: the account key, the certificate and its key kept in a storage folder, the
// challenges answered on the proxy's own listeners (http-01 on HTTP_PORT, tls-alpn-01 on HTTPS).
import { X509Certificate, createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { Agent as HttpsAgent } from 'node:https'
import { join } from 'node:path'
import { createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import { loadCertificatePair, selfSignedPair, type CertificatePair } from './certificates.js'

export type AcmeChallengeType = 'http-01' | 'tls-alpn-01'

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

/**
 * The challenges this process is answering right now: an http-01 token's key authorization, a
 * tls-alpn-01 name's challenge certificate. Anything else is unknown (404, or no handshake).
 */
export class AcmeChallenges {
  private readonly http = new Map<string, string>()
  private readonly tlsAlpn = new Map<string, SecureContext>()

  http01 (token: string): string | undefined {
    return this.http.get(token)
  }

  tlsAlpn01 (servername: string): SecureContext | undefined {
    return this.tlsAlpn.get(servername.toLowerCase())
  }

  setHttp01 (token: string, keyAuthorization: string): void { this.http.set(token, keyAuthorization) }
  clearHttp01 (token: string): void { this.http.delete(token) }
  setTlsAlpn01 (servername: string, pair: CertificatePair): void {
    this.tlsAlpn.set(servername.toLowerCase(), createSecureContext({ cert: pair.cert, key: pair.key }))
  }

  clearTlsAlpn01 (servername: string): void { this.tlsAlpn.delete(servername.toLowerCase()) }

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

/** Files that reach the disk whole or not at all, readable by this user only. */
function writeAtomically (file: string, content: string | Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(temporary, content, { mode: 0o600 })
    renameSync(temporary, file)
  } catch (error) {
    rmSync(temporary, { force: true })
    throw error
  }
}

function readIfThere (file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** The certificate's dates, and whether it names every domain. */
export function describe (cert: Buffer | string, domains: string[]): { notBefore: Date, notAfter: Date, covers: boolean } {
  const leaf = new X509Certificate(cert)
  return {
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    covers: domains.every(domain => leaf.checkHost(domain, { wildcards: false }) !== undefined)
  }
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

type AcmeClientModule = typeof import('acme-client')

export interface AcmeEvents {
  /** A CA-issued certificate is ready to serve (the stored one at start, or a new one). */
  onCertificate: (pair: CertificatePair) => void
}

/**
 * One set of domains' certificate: the stored one when still good, else a temporary self-signed
 * one until the CA's is obtained. `start()` orders when needed (after the listeners answer).
 */
export class AcmeCertificates {
  readonly challenges = new AcmeChallenges()
  /** The pair to serve now; `issued` once it is the CA's. */
  current: CertificatePair
  issued: boolean
  private readonly listeners: Array<(pair: CertificatePair) => void> = []
  private timer: NodeJS.Timeout | undefined
  private renewal: NodeJS.Timeout | undefined
  private failures = 0
  private closed = false
  private log: FastifyBaseLogger | undefined

  private constructor (readonly options: AcmeOptions, private readonly directory: string, current: CertificatePair, issued: boolean) {
    this.current = current
    this.issued = issued
  }

  /** Reads the stored certificate; a temporary self-signed one when none is still good. */
  static async open (options: AcmeOptions): Promise<AcmeCertificates> {
    // one folder per CA, so that a certificate from staging is never served once production is asked for
    const url = new URL(options.directory)
    const directory = join(options.storage, `${url.host}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '_'))
    const stored = readPair(directory)
    return stored !== undefined && stillGood(stored.cert, options.domains)
      ? new AcmeCertificates(options, directory, stored, true)
      : new AcmeCertificates(options, directory, await selfSignedPair(options.domains), false)
  }

  private get certFile (): string { return join(this.directory, CERT_FILE) }
  private get keyFile (): string { return join(this.directory, KEY_FILE) }

  onCertificate (listener: (pair: CertificatePair) => void): void {
    this.listeners.push(listener)
  }

  /** Orders a certificate unless the one served is the CA's and still good; retries failures. */
  start (log: FastifyBaseLogger): void {
    this.log = log
    if (this.issued) {
      const { notAfter } = describe(this.current.cert, this.options.domains)
      log.info({ domains: this.options.domains, expires: notAfter.toISOString() }, 'ACME: serving the stored certificate; no order needed')
      this.watchRenewal()
      return
    }
    log.warn({ domains: this.options.domains }, 'ACME: serving a temporary self-signed certificate while one is ordered')
    this.order()
  }

  close (): void {
    this.closed = true
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
    const dueIn = renewalDueIn(this.current.cert)
    if (dueIn === 0) {
      const { notAfter } = describe(this.current.cert, this.options.domains)
      this.log?.info({ domains: this.options.domains, expires: notAfter.toISOString() }, 'ACME: a third of the certificate\'s lifetime is left; renewing')
      this.order()
      return
    }
    this.renewal = setTimeout(() => this.watchRenewal(), Math.min(dueIn, RENEWAL_CHECK_MAX_MS)).unref()
  }

  private order (): void {
    this.obtain().then(pair => {
      if (this.closed) return
      this.failures = 0
      this.current = pair
      this.issued = true
      for (const listener of this.listeners) listener(pair)
      this.watchRenewal()
    }, (error: Error) => {
      if (this.closed) return
      const retryMs = Math.min(RETRY_FIRST_MS * 2 ** this.failures++, RETRY_LAST_MS)
      this.log?.error({ err: { message: error.message }, domains: this.options.domains, retryInSeconds: retryMs / 1000 },
        'ACME: no certificate obtained; the current one stays in service')
      this.timer = setTimeout(() => this.order(), retryMs).unref()
    })
  }

  private async obtain (): Promise<CertificatePair> {
    const { domains, email, challenge: wanted } = this.options
    // loaded only here: acme-client and its X.509 and HTTP libraries are start-up time for no one else
    const acme: AcmeClientModule = await import('acme-client')
    this.trustCa(acme)
    mkdirSync(this.directory, { recursive: true, mode: 0o700 })
    const accountKey = await this.accountKey(acme)
    const client = new acme.Client({ directoryUrl: this.options.directory, accountKey })
    const [key, csr] = await acme.crypto.createCsr({ commonName: domains[0], altNames: domains }, await acme.crypto.createPrivateEcdsaKey())
    this.log?.info({ domains, challenge: wanted, directory: this.options.directory }, 'ACME: ordering a certificate')
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
        else {
          // an EC key like the served certificate's: OpenSSL keeps one certificate per key type, and
          // an RSA challenge certificate would sit beside the EC one, which an ECDSA-first client
          // such as the CA's validator would still be shown
          const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey())
          this.challenges.setTlsAlpn01(authz.identifier.value, { cert: alpnCert, key: alpnKey })
        }
      },
      challengeRemoveFn: async (authz, challenge) => {
        if (challenge.type === 'http-01') this.challenges.clearHttp01(challenge.token)
        else this.challenges.clearTlsAlpn01(authz.identifier.value)
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
