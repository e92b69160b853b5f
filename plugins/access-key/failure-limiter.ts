// Brute-force brake for the access key: a client that fails too often within a window is
// answered 429 for a cool-down. Only failures count, so a client with the key is never slowed.
//
// What is one client: an IPv4 address, or an IPv6 /64 (one subscriber's network, from which an
// attacker can use any of 2^64 addresses). An IPv6 /48 (what a subscriber may be delegated) is
// also counted as a whole, with PREFIX_ALLOWANCE times the allowance, so that rotating through
// its 65 536 /64s does not multiply the guesses.
//
// Memory is bounded without forgetting a cool-down: an entry leaves the table only once its
// window and its cool-down are over. When the table is full of live entries, a newcomer is
// counted in a coarser bucket it shares with its neighbours (IPv4 /16, IPv6 /32), in a table a
// tenth the size, and past that in one bucket for everyone. A flood of addresses thus brakes
// newcomers together, and never sets free the ones already braked.
import ipaddr from 'ipaddr.js'
import { isIP, isIPv6 } from 'node:net'

export interface FailureLimiterOptions {
  /** Failures allowed within `windowMs` before the cool-down starts. */
  maxFailures: number
  windowMs: number
  cooldownMs: number
  /** Clients remembered one by one. Default 10 000 (about 1 MB). */
  maxEntries?: number
}

/** How many clients' allowances one IPv6 /48 gets: a household's few devices, not 65 536 /64s. */
export const PREFIX_ALLOWANCE = 3

const EVERYONE = '*'
// a full table is swept for entries that are over at most this often, so that a flood of new
// addresses costs one pass per second, not one per failure
const SWEEP_INTERVAL_MS = 1000

interface Entry {
  failures: number
  windowStart: number
  blockedUntil: number
}

class Table {
  readonly entries = new Map<string, Entry>()
  private nextSweep = 0

  constructor (private readonly capacity: number, private readonly windowMs: number) {}

  /** Whether `key` is counted here: it already is, or there is room, after a sweep if need be. */
  takes (key: string, now: number): boolean {
    if (this.entries.has(key) || this.entries.size < this.capacity) return true
    if (now >= this.nextSweep) {
      this.nextSweep = now + SWEEP_INTERVAL_MS
      for (const [k, entry] of this.entries) {
        if (entry.blockedUntil <= now && now - entry.windowStart > this.windowMs) this.entries.delete(k)
      }
    }
    return this.entries.size < this.capacity
  }
}

/**
 * An address as the brake reads it, parsed once: IPv4 (also one mapped into IPv6, as a
 * dual-stack socket shows an IPv4 client: that client, not a /64 shared by all), the eight
 * 16-bit groups of an IPv6 address (its zone left out), or undefined for anything else.
 */
function parsed (address: string): { v4: string } | { v6: number[] } | undefined {
  const text = address.split('%')[0]
  if (isIP(text) === 4) return { v4: text }
  if (!isIPv6(text)) return undefined
  const ip = ipaddr.IPv6.parse(text)
  return ip.isIPv4MappedAddress() ? { v4: ip.toIPv4Address().toString() } : { v6: ip.parts }
}

function prefix (groups: number[], bits: 32 | 48 | 64): string {
  return `${groups.slice(0, bits / 16).map(group => group.toString(16)).join(':')}::/${bits}`
}

/** The client the brake counts: an IPv4 address or an IPv6 /64. Anything else is used as is. */
export function addressGroup (address: string): string {
  const client = parsed(address)
  if (client === undefined) return address
  return 'v4' in client ? client.v4 : prefix(client.v6, 64)
}

/** A counter and the shared bucket it falls back to when the table is full. */
interface Counter { key: string, coarse: string, allowance: number }

/** Told of each failure and clearing made here, to share them with other processes (shared-brake.ts). */
export interface FailureListener {
  failed: (address: string) => void
  cleared: (address: string | undefined) => void
}

export class FailureLimiter {
  private readonly clients: Table
  private readonly coarse: Table
  /** Set by a share (REDIS_URL): told of this process's own failures and clearings. */
  listener: FailureListener | undefined

  constructor (private readonly opts: FailureLimiterOptions) {
    const maxEntries = opts.maxEntries ?? 10_000
    this.clients = new Table(maxEntries, opts.windowMs)
    this.coarse = new Table(Math.max(1, Math.floor(maxEntries / 10)), opts.windowMs)
  }

  /** The counters a failure from `address` adds to: its own, and its /48's for IPv6. */
  private countersOf (address: string): Counter[] {
    const client = parsed(address)
    if (client === undefined) return [{ key: address, coarse: EVERYONE, allowance: this.opts.maxFailures }]
    if ('v4' in client) {
      const [a, b] = client.v4.split('.')
      return [{ key: client.v4, coarse: `${a}.${b}.0.0/16`, allowance: this.opts.maxFailures }]
    }
    const groups = client.v6
    const coarse = prefix(groups, 32)
    return [
      { key: prefix(groups, 64), coarse, allowance: this.opts.maxFailures },
      { key: prefix(groups, 48), coarse, allowance: this.opts.maxFailures * PREFIX_ALLOWANCE }
    ]
  }

  /** Where a counter's failures are kept: its own entry, else its shared bucket, else everyone's. */
  private place (counter: Counter, now: number): { table: Table, key: string, allowance: number } {
    if (this.clients.takes(counter.key, now)) return { table: this.clients, key: counter.key, allowance: counter.allowance }
    const key = this.coarse.takes(counter.coarse, now) ? counter.coarse : EVERYONE
    return { table: this.coarse, key, allowance: this.opts.maxFailures }
  }

  /** The entry that brakes a counter now: its own if it has one, else the shared buckets'. */
  private entriesFor (counter: Counter): Array<Entry | undefined> {
    const own = this.clients.entries.get(counter.key)
    return own !== undefined ? [own] : [this.coarse.entries.get(counter.coarse), this.coarse.entries.get(EVERYONE)]
  }

  /** Milliseconds `address` must still wait, or 0 when it may try. */
  retryAfter (address: string, now = Date.now()): number {
    let wait = 0
    for (const counter of this.countersOf(address)) {
      for (const entry of this.entriesFor(counter)) {
        if (entry !== undefined && entry.blockedUntil > now) wait = Math.max(wait, entry.blockedUntil - now)
      }
    }
    return wait
  }

  /**
   * Counts a failure from `address`; true when it starts a cool-down. `local`: made here, and
   * told to the listener; false for one another process reported.
   */
  fail (address: string, now = Date.now(), local = true): boolean {
    if (local) this.listener?.failed(address)
    let blocked = false
    const counted = new Set<Entry>()
    for (const counter of this.countersOf(address)) {
      const { table, key, allowance } = this.place(counter, now)
      let entry = table.entries.get(key)
      // a /64 and its /48 that both fell back to one shared bucket count once
      if (entry !== undefined && counted.has(entry)) continue
      if (entry === undefined || now - entry.windowStart > this.opts.windowMs) {
        entry = { failures: 0, windowStart: now, blockedUntil: entry?.blockedUntil ?? 0 }
        table.entries.set(key, entry)
      }
      counted.add(entry)
      if (++entry.failures >= allowance) {
        entry.blockedUntil = now + this.opts.cooldownMs
        entry.failures = 0
        entry.windowStart = now
        blocked = true
      }
    }
    return blocked
  }

  /**
   * Forgets what brakes `address` (its entries, or the shared buckets it falls in), or every
   * entry without one: an operator's way to lift a cool-down. Returns the cool-downs lifted.
   */
  clear (address?: string, now = Date.now(), local = true): number {
    if (local) this.listener?.cleared(address)
    let lifted = 0
    const forget = (table: Table, key: string): void => {
      const entry = table.entries.get(key)
      if (entry !== undefined && entry.blockedUntil > now) lifted++
      table.entries.delete(key)
    }
    if (address === undefined) {
      for (const table of [this.clients, this.coarse]) {
        for (const key of [...table.entries.keys()]) forget(table, key)
      }
      return lifted
    }
    for (const counter of this.countersOf(address)) {
      if (this.clients.entries.has(counter.key)) forget(this.clients, counter.key)
      else for (const key of [counter.coarse, EVERYONE]) forget(this.coarse, key)
    }
    return lifted
  }
}
