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

/** A pair that cannot serve: `variable` names the setting to fix (TLS_CERT_FILE or TLS_KEY_FILE). */
export class CertificateError extends Error {
  constructor (readonly variable: 'TLS_CERT_FILE' | 'TLS_KEY_FILE', message: string) {
    super(`${variable}: ${message}`)
    this.name = 'CertificateError'
  }
}

function read (file: string, variable: 'TLS_CERT_FILE' | 'TLS_KEY_FILE'): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new CertificateError(variable, `cannot read ${JSON.stringify(file)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
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
 * Polls both files (stat follows symlinks, so certbot's symlink swap is seen like an in-place
 * write); `onError` for a pair that cannot serve yet (a half-written renewal: the next write checks
 * again). Polling, not fs.watch: inotify loses a file replaced by rename, and files on bind mounts.
 */
export function watchCertificatePair (
  files: CertificateFiles,
  current: CertificatePair,
  onPair: (pair: CertificatePair) => void,
  onError: (error: Error) => void,
  intervalMs = 2000
): CertificateWatcher {
  let served = current
  let pending: NodeJS.Timeout | undefined
  const check = (): void => {
    pending = undefined
    try {
      const pair = loadCertificatePair(files)
      if (pair.cert.equals(served.cert) && pair.key.equals(served.key)) return
      served = pair
      onPair(pair)
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
  watchFile(files.certFile, options, changed)
  watchFile(files.keyFile, options, changed)
  return {
    close () {
      clearTimeout(pending)
      unwatchFile(files.certFile, changed)
      unwatchFile(files.keyFile, changed)
    }
  }
}

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
