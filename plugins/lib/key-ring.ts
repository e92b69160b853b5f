// The accepted access keys: from the environment and/or a file (one key per line, for Docker
// secrets). The file is re-read when it changes, so a key is revoked by deleting its line.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync, unwatchFile, watchFile } from 'node:fs'

// Keys are compared as SHA-256 digests: equal lengths, so timingSafeEqual never throws, and
// the time taken says nothing about the length or the prefix of a key.
function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** Keys in a key file: one per line; blank lines and lines starting with # are ignored. */
export function parseKeyFile (text: string): string[] {
  return text.split(/\r?\n/).map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#'))
}

export class KeyRing {
  private fileKeys: string[] = []
  private digests: Buffer[] = []
  private keys: string[] = []

  constructor (private readonly listed: string[], private readonly file?: string) {
    if (file !== undefined) this.fileKeys = parseKeyFile(readFileSync(file, 'utf8'))
    this.rebuild()
  }

  get size (): number {
    return this.keys.length
  }

  private rebuild (): void {
    this.keys = [...new Set([...this.listed, ...this.fileKeys])]
    this.digests = this.keys.map(digest)
  }

  /** Constant-time in the key sent: every accepted key is compared, whatever matched before. */
  accepts (sent: string): boolean {
    const sentDigest = digest(sent)
    let match = false
    for (const key of this.digests) match = timingSafeEqual(key, sentDigest) || match
    return match
  }

  /** HMAC of `message` under every current key; a revoked key's signatures stop verifying. */
  verifies (message: string, signature: Buffer): boolean {
    let match = false
    for (const key of this.keys) {
      const expected = createHmac('sha256', key).update(message).digest()
      match = (expected.length === signature.length && timingSafeEqual(expected, signature)) || match
    }
    return match
  }

  /** Signs `message` with `key`, which the caller has just checked with accepts(). */
  static sign (key: string, message: string): Buffer {
    return createHmac('sha256', key).update(message).digest()
  }

  /** Re-reads the key file whenever it changes; returns a function that stops watching. */
  watch (onReload: (count: number) => void, onError: (error: Error) => void, intervalMs = 2000): () => void {
    const file = this.file
    if (file === undefined) return () => {}
    const reload = (): void => {
      try {
        this.fileKeys = parseKeyFile(readFileSync(file, 'utf8'))
      } catch (error) {
        // an unreadable file revokes its keys rather than keeping stale ones in service
        this.fileKeys = []
        onError(error as Error)
      }
      this.rebuild()
      onReload(this.keys.length)
    }
    watchFile(file, { interval: intervalMs, persistent: false }, reload)
    return () => unwatchFile(file, reload)
  }
}
