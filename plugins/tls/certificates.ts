import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import { createSecureContext } from 'node:tls'

export interface CertificatePair {
  cert: Buffer
  key: Buffer
}

export interface CertificateFiles {
  certFile: string
  keyFile: string
}

type Variable = 'TLS_CERT_FILE' | 'TLS_KEY_FILE' | 'TLS_CLIENT_CA_FILE' | 'ACME_STORAGE'

/** A file that cannot serve: `variable` names the setting to fix. */
export class CertificateError extends Error {
  constructor (readonly variable: Variable, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'CertificateError'
  }
}

function read (file: string, variable: Variable): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new CertificateError(variable, `cannot read ${JSON.stringify(file)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
}

/** The DNS names in a certificate's subjectAltName, as written there. */
export function dnsNames (leaf: X509Certificate): string[] {
  return (leaf.subjectAltName ?? '').split(', ').filter(entry => entry.startsWith('DNS:')).map(entry => entry.slice(4))
}

/** A half-written file fails one of these checks, so it is never put in service. */
export function loadCertificatePair ({ certFile, keyFile }: CertificateFiles): CertificatePair {
  const cert = read(certFile, 'TLS_CERT_FILE')
  const key = read(keyFile, 'TLS_KEY_FILE')
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(cert)
  } catch {
    throw new CertificateError('TLS_CERT_FILE', `${JSON.stringify(certFile)} is not a PEM certificate`)
  }
  let privateKey
  try {
    privateKey = createPrivateKey(key)
  } catch {
    throw new CertificateError('TLS_KEY_FILE', `${JSON.stringify(keyFile)} is not a PEM private key (or it is encrypted)`)
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new CertificateError('TLS_KEY_FILE', `${JSON.stringify(keyFile)} does not match the certificate in ${JSON.stringify(certFile)}`)
  }
  try {
    createSecureContext({ cert, key })
  } catch (error) {
    throw new CertificateError('TLS_CERT_FILE', `OpenSSL refuses the pair: ${(error as Error).message}`)
  }
  return { cert, key }
}

/** A certificate for first tries on a LAN: browsers will warn, the log says so too. */
export async function selfSignedPair (hostnames: string[]): Promise<CertificatePair> {
  const altNames = hostnames.map(name => /^[0-9.]+$|:/.test(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name })
  const notAfterDate = new Date(Date.now() + 365 * 24 * 3600 * 1000)
  // loaded only here: its X.509 toolkit costs tens of milliseconds of start-up for everyone else
  const { generate } = await import('selfsigned')
  const generated = await generate([{ name: 'commonName', value: hostnames[0] }], {
    keyType: 'ec',
    curve: 'P-256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames }
    ]
  })
  return { cert: Buffer.from(generated.cert), key: Buffer.from(generated.private) }
}

export interface CertificateWatcher {
  close (): void
}

/**
 * Polls `paths` (stat follows symlinks, so certbot's symlink swap is seen like an in-place write);
 * `onValue` gets each new valid value `load` reads, `onError` files that cannot serve yet (a
 * half-written renewal: the next write checks again). Polling, not fs.watch: inotify loses a file
 * replaced by rename, and files on bind mounts.
 */
function watchLoaded<T> (
  paths: string[],
  load: () => T,
  same: (a: T, b: T) => boolean,
  current: T,
  onValue: (value: T) => void,
  onError: (error: Error) => void,
  intervalMs: number
): CertificateWatcher {
  let served = current
  let pending: NodeJS.Timeout | undefined
  const check = (): void => {
    pending = undefined
    try {
      const value = load()
      if (same(value, served)) return
      served = value
      onValue(value)
    } catch (error) {
      onError(error as Error)
    }
  }
  // certbot writes the two files one after the other: wait for the second before checking
  const changed = (now: Stats, before: Stats): void => {
    if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return
    if (pending === undefined) pending = setTimeout(check, Math.min(500, intervalMs)).unref()
  }
  const options = { interval: intervalMs, persistent: false }
  for (const path of paths) watchFile(path, options, changed)
  return {
    close () {
      clearTimeout(pending)
      for (const path of paths) unwatchFile(path, changed)
    }
  }
}

/** The pair's files, watched: `onPair` gets each new pair that can serve. */
export function watchCertificatePair (
  files: CertificateFiles,
  current: CertificatePair,
  onPair: (pair: CertificatePair) => void,
  onError: (error: Error) => void,
  intervalMs = 2000
): CertificateWatcher {
  return watchLoaded([files.certFile, files.keyFile], () => loadCertificatePair(files),
    (a, b) => a.cert.equals(b.cert) && a.key.equals(b.key), current, onPair, onError, intervalMs)
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

/**
 * Reads and checks the CA certificates that sign users' client certificates: at least one PEM
 * certificate, each one a CA (a server's fullchain.pem given by mistake would otherwise let no
 * one in without saying why), and OpenSSL accepts them as trust anchors.
 */
export function loadClientCa (file: string): Buffer {
  const ca = read(file, 'TLS_CLIENT_CA_FILE')
  const blocks = ca.toString('latin1').match(PEM_CERTIFICATE) ?? []
  if (blocks.length === 0) throw new CertificateError('TLS_CLIENT_CA_FILE', `${JSON.stringify(file)} holds no PEM certificate`)
  for (const block of blocks) {
    let certificate: X509Certificate
    try {
      certificate = new X509Certificate(block)
    } catch {
      throw new CertificateError('TLS_CLIENT_CA_FILE', `${JSON.stringify(file)} holds a block that is not a PEM certificate`)
    }
    if (!certificate.ca) {
      throw new CertificateError('TLS_CLIENT_CA_FILE', `${JSON.stringify(file)} holds a certificate that is not a CA (${certificate.subject.replace(/\n/g, ', ')})`)
    }
  }
  try {
    createSecureContext({ ca })
  } catch (error) {
    throw new CertificateError('TLS_CLIENT_CA_FILE', `OpenSSL refuses the CA certificates: ${(error as Error).message}`)
  }
  return ca
}

/** The client CA file, watched like the pair: `onCa` gets each new valid content. */
export function watchClientCa (
  file: string,
  current: Buffer,
  onCa: (ca: Buffer) => void,
  onError: (error: Error) => void,
  intervalMs = 2000
): CertificateWatcher {
  return watchLoaded([file], () => loadClientCa(file), (a, b) => a.equals(b), current, onCa, onError, intervalMs)
}

/**
 * What the listener asks of clients when TLS_CLIENT_CA_FILE is set: a certificate, requested
 * but not required, so that a browser without one still completes the handshake and gets a
 * readable 403 page; the access gate reads the verdict (TLSSocket.authorized) per request.
 */
export const CLIENT_CERTIFICATE_REQUEST = { requestCert: true, rejectUnauthorized: false } as const

/**
 * Mozilla's "intermediate" profile, which every Immich client speaks. Passed both when the server
 * is created and on every reload, since setSecureContext() replaces them all.
 */
export const TLS_CONTEXT_OPTIONS = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: [
    'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'
  ].join(':'),
  ecdhCurve: 'X25519:P-256:P-384',
  honorCipherOrder: true
} as const
