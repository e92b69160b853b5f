// Brute-force brake for the access key: an address that fails too often within a window is
// answered 429 for a cool-down. Only failures count, so a client with the key is never slowed.

export interface FailureLimiterOptions {
  /** Failures allowed within `windowMs` before the cool-down starts. */
  maxFailures: number
  windowMs: number
  cooldownMs: number
  /** Addresses remembered at once; the oldest is forgotten first, so memory stays bounded. */
  maxEntries?: number
}

interface Entry {
  failures: number
  windowStart: number
  blockedUntil: number
}

export class FailureLimiter {
  private readonly entries = new Map<string, Entry>()

  constructor (private readonly opts: FailureLimiterOptions) {}

  /** Milliseconds `address` must still wait, or 0 when it may try. */
  retryAfter (address: string, now = Date.now()): number {
    const entry = this.entries.get(address)
    return entry === undefined || entry.blockedUntil <= now ? 0 : entry.blockedUntil - now
  }

  fail (address: string, now = Date.now()): void {
    let entry = this.entries.get(address)
    if (entry === undefined || now - entry.windowStart > this.opts.windowMs) {
      entry = { failures: 0, windowStart: now, blockedUntil: 0 }
    }
    this.entries.delete(address)
    entry.failures++
    if (entry.failures >= this.opts.maxFailures) {
      entry.blockedUntil = now + this.opts.cooldownMs
      entry.failures = 0
      entry.windowStart = now
    }
    this.entries.set(address, entry)
    if (this.entries.size > (this.opts.maxEntries ?? 10_000)) {
      this.entries.delete(this.entries.keys().next().value as string)
    }
  }
}
