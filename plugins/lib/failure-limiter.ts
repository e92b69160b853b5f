// Brute-force brake for the access key: an address that fails too often within a window is
// answered 429 for a cool-down. Only failures count, so a client with the key is never slowed.
import { isIPv6 } from 'node:net'

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

  /** Counts a failure; true when it starts the cool-down. */
  fail (address: string, now = Date.now()): boolean {
    let entry = this.entries.get(address)
    if (entry === undefined || now - entry.windowStart > this.opts.windowMs) {
      entry = { failures: 0, windowStart: now, blockedUntil: 0 }
    }
    this.entries.delete(address)
    entry.failures++
    const blocked = entry.failures >= this.opts.maxFailures
    if (blocked) {
      entry.blockedUntil = now + this.opts.cooldownMs
      entry.failures = 0
      entry.windowStart = now
    }
    this.entries.set(address, entry)
    if (this.entries.size > (this.opts.maxEntries ?? 10_000)) {
      this.entries.delete(this.entries.keys().next().value as string)
    }
    return blocked
  }
}

/**
 * The unit the brake counts: an IPv4 address, or the /64 of an IPv6 address (one subscriber's
 * network, from which an attacker can use any of 2^64 addresses). Anything else is used as is.
 */
export function addressGroup (address: string): string {
  const plain = address.split('%')[0]
  if (!isIPv6(plain)) return address
  // an IPv4 client seen through a dual-stack socket is that IPv4 address, not a /64 shared by all
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain)
  if (mapped !== null) return mapped[1]
  let text = plain
  // an IPv4 tail (64:ff9b::192.0.2.1) as the two groups it stands for
  const tailStart = text.lastIndexOf(':') + 1
  if (text.includes('.', tailStart)) {
    const [a, b, c, d] = text.slice(tailStart).split('.').map(Number)
    text = `${text.slice(0, tailStart)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [left, right] = text.split('::')
  const head = left === '' ? [] : left.split(':')
  const tail = right === undefined || right === '' ? [] : right.split(':')
  const groups = right === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail]
  return `${groups.slice(0, 4).map(group => parseInt(group, 16).toString(16)).join(':')}::/64`
}
