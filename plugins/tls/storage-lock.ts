// ACME_STORAGE's files: written whole or not at all, and a lock file with a lease for proxies
// sharing the folder (a volume): the holder rewrites its timestamp every few seconds, and a lock
// not refreshed for STALE_MS is someone's who died. certmagic (Caddy) locks its file storage the
// same way.
import { randomUUID } from 'node:crypto'
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'

/** A lock older than this was left by a process that stopped refreshing it. */
export const STALE_MS = 10_000
const REFRESH_MS = 3_000
const POLL_MS = 1_000

/** Files that reach the disk whole or not at all, readable by this user only. */
export function writeAtomically (file: string, content: string | Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(temporary, content, { mode: 0o600 })
    renameSync(temporary, file)
  } catch (error) {
    rmSync(temporary, { force: true })
    throw error
  }
}

interface Holder { owner: string, pid: number, host: string, at: number }

function read (file: string): Holder | undefined {
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>
    return typeof holder.owner === 'string' && typeof holder.at === 'number' ? holder as Holder : undefined
  } catch {
    return undefined
  }
}

export class StorageLock {
  private readonly refresh: NodeJS.Timeout

  private constructor (private readonly file: string, private readonly owner: string) {
    this.refresh = setInterval(() => {
      if (read(file)?.owner !== owner) return
      try {
        writeAtomically(file, JSON.stringify(this.holder()))
      } catch {
        // a failed refresh shows as a stale lock to the others: the worst is a second order
      }
    }, REFRESH_MS).unref()
  }

  private holder (): Holder {
    return { owner: this.owner, pid: process.pid, host: hostname(), at: Date.now() }
  }

  /**
   * Takes the lock, waiting while another live process holds it; undefined if `stopped()` turns
   * true first. `waiting` is called once, with the holder, when it has to wait.
   */
  static async acquire (file: string, stopped: () => boolean, waiting: (holder: Omit<Holder, 'owner'>) => void): Promise<StorageLock | undefined> {
    const owner = randomUUID()
    let told = false
    while (!stopped()) {
      try {
        writeFileSync(file, JSON.stringify({ owner, pid: process.pid, host: hostname(), at: Date.now() }), { flag: 'wx', mode: 0o600 })
        return new StorageLock(file, owner)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      const holder = read(file)
      // unreadable (half-written by a process that died) or not refreshed: taken over
      if (holder === undefined || Date.now() - holder.at > STALE_MS) {
        rmSync(file, { force: true })
        continue
      }
      if (!told) {
        told = true
        waiting({ pid: holder.pid, host: holder.host, at: holder.at })
      }
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
    return undefined
  }

  release (): void {
    clearInterval(this.refresh)
    if (read(this.file)?.owner === this.owner) rmSync(this.file, { force: true })
  }
}
