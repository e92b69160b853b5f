// The access key's brake shared by proxy instances through Redis (REDIS_URL; Immich's compose
// file already runs one, Valkey): each instance publishes its failures, and every instance counts
// the others' in its own FailureLimiter, so that N instances behind a load balancer do not give a
// guesser N × ACCESS_KEY_MAX_FAILURES tries. Decisions stay in the process, without a round trip
// per request, and keep the limiter's rules (IPv6 /64 and /48, bounded memory). While Redis is
// unreachable each instance counts its own, with a warning, and shares again once it is back.
import type { FastifyBaseLogger } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { FailureLimiter } from './failure-limiter.js'

const CHANNEL = 'immich-proxy:access-key-brake'

/** What an instance publishes: a failure from `address`, or a clearing (of everyone: no address). */
interface BrakeMessage { from: string, failed?: string, cleared?: string | null }

/** `redis://host:6379` without a user name or password, for the log. */
export function redisAddress (url: string): string {
  const parsed = new URL(url)
  return `${parsed.protocol}//${parsed.host}`
}

type RedisClient = import('ioredis').Redis

export class SharedBrake {
  private readonly id = randomUUID()
  private state: 'connecting' | 'shared' | 'alone' | 'closed' = 'connecting'

  private constructor (
    private readonly brake: FailureLimiter,
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly address: string,
    private readonly log: FastifyBaseLogger
  ) {}

  /**
   * Connects to Redis in the background: the proxy serves meanwhile, counting in this process
   * until the connection is up. ioredis reconnects by itself (every 0.2 s more, at most 5 s apart).
   */
  static async open (url: string, brake: FailureLimiter, log: FastifyBaseLogger): Promise<SharedBrake> {
    const { Redis } = await import('ioredis')
    const options = {
      retryStrategy: (times: number) => Math.min(times * 200, 5000),
      // a failure is not worth reporting late: counted here, and lost to the others while Redis is away
      maxRetriesPerRequest: 0,
      lazyConnect: true
    }
    const publisher = new Redis(url, { ...options, enableOfflineQueue: false })
    // its subscription is sent once connected, and again after each reconnection
    const subscriber = new Redis(url, options)
    const share = new SharedBrake(brake, publisher, subscriber, redisAddress(url), log)
    share.watch()
    brake.listener = {
      failed: address => { share.publish({ from: share.id, failed: address }) },
      cleared: address => { share.publish({ from: share.id, cleared: address ?? null }) }
    }
    subscriber.on('message', (channel: string, text: string) => { share.receive(text) })
    publisher.connect().catch(() => {})
    subscriber.connect().then(async () => await subscriber.subscribe(CHANNEL)).catch(() => {})
    return share
  }

  private watch (): void {
    const down = (error?: Error): void => {
      if (this.state === 'alone' || this.state === 'closed') return
      this.state = 'alone'
      this.log.warn({ redis: this.address, err: error === undefined ? undefined : { message: error.message, code: (error as NodeJS.ErrnoException).code } },
        `REDIS_URL: Redis at ${this.address} is unreachable; the access key brake counts in this process only until it is back`)
    }
    const ready = (): void => {
      if (this.publisher.status === 'ready' && this.subscriber.status === 'ready') this.up()
    }
    for (const client of [this.publisher, this.subscriber]) {
      // ioredis reports each failed attempt as an 'error' (unhandled, it would print to stderr)
      client.on('error', down)
      client.on('close', () => { down() })
      client.on('ready', ready)
    }
  }

  private up (): void {
    const was = this.state
    this.state = 'shared'
    this.log.info({ redis: this.address }, was === 'alone'
      ? `REDIS_URL: Redis at ${this.address} is back; the access key brake is shared again`
      : `REDIS_URL: the access key brake is shared through Redis at ${this.address}`)
  }

  private publish (message: BrakeMessage): void {
    if (this.publisher.status !== 'ready') return
    this.publisher.publish(CHANNEL, JSON.stringify(message)).catch(() => {})
  }

  private receive (text: string): void {
    let message: BrakeMessage
    try {
      message = JSON.parse(text) as BrakeMessage
    } catch {
      return
    }
    if (message.from === this.id) return
    if (typeof message.failed === 'string') this.brake.fail(message.failed, Date.now(), false)
    else if (message.cleared !== undefined) this.brake.clear(message.cleared ?? undefined, Date.now(), false)
  }

  async close (): Promise<void> {
    // its own disconnection is not Redis going away
    this.state = 'closed'
    this.brake.listener = undefined
    this.publisher.disconnect()
    this.subscriber.disconnect()
  }
}
