// The accepted access keys: from the environment and/or a file (one key per line, for Docker
// secrets). The file is re-read while the proxy runs, so a key is revoked by deleting its line.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'

// Keys are compared as SHA-256 digests: equal lengths, so timingSafeEqual never throws, and
// the time taken says nothing about the length or the prefix of a key.
function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * The process, not the file, is out of something (descriptors, here at the fd limit): the read
 * failing says nothing about the keys, so they stay in service until a read succeeds.
 */
export function transientReadError (error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code
  return code === 'EMFILE' || code === 'ENFILE'
}

/** Keys in a key file: one per line; blank lines and lines starting with # are ignored. */
export function parseKeyFile (text: string): string[] {
  return text.split(/\r?\n/).map(line => line.trim()).filter(line => line !== '' && !line.startsWith('#'))
}

/**
 * The keys of `file`. A failed open names the path in its error, a failed read (EISDIR) does not;
 * the start-up message that names ACCESS_KEY_FILE (src/server.ts) needs it in both.
 */
function readKeyFile (file: string): string[] {
  try {
    return parseKeyFile(readFileSync(file, 'utf8'))
  } catch (error) {
    (error as NodeJS.ErrnoException).path ??= file
    throw error
  }
}

export class KeyRing {
  private fileKeys: string[] = []
  private digests: Buffer[] = []
  private keys: string[] = []

  constructor (private readonly listed: string[], private readonly file?: string) {
    if (file !== undefined) this.fileKeys = readKeyFile(file)
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

  /**
   * Re-reads the key file every `intervalMs` and puts a changed set of keys in service; returns
   * a function that stops. The file is read rather than watched: fs.watchFile compares stat
   * results, and misses a change made between the first read and its own first stat, or one
   * within a tick of the file system's clock; a secrets file costs nothing to read.
   */
  watch (onReload: (count: number) => void, onError: (error: Error) => void, intervalMs = 2000): () => void {
    const file = this.file
    if (file === undefined) return () => {}
    let reading = false
    let failing = false
    const check = async (): Promise<void> => {
      if (reading) return
      reading = true
      let keys: string[] = []
      try {
        keys = parseKeyFile(await readFile(file, 'utf8'))
        failing = false
      } catch (error) {
        // an unreadable file revokes its keys rather than keeping stale ones in service; said
        // once, not at every check while it stays unreadable
        if (!failing) onError(error as Error)
        failing = true
        if (transientReadError(error)) return
      } finally {
        reading = false
      }
      if (keys.length === this.fileKeys.length && keys.every((key, i) => key === this.fileKeys[i])) return
      this.fileKeys = keys
      this.rebuild()
      onReload(this.keys.length)
    }
    const timer = setInterval(() => { check().catch(onError) }, intervalMs)
    timer.unref()
    return () => clearInterval(timer)
  }
}
