/// <reference path="./undici-internals.d.ts" />
// Several Immich servers behind one proxy (UPSTREAM_URL a list), as nginx's `upstream` block with
// `least_conn` and HAProxy's `check`: each server has its own pools; a small selector picks one per
// request among those answering, a request its server refused before taking any byte of it goes
// once to another, and Immich's liveness route is asked every UPSTREAM_HEALTH_INTERVAL.
// No stickiness is needed: Immich keeps its socket.io state in Redis, and its web client uses the
// websocket transport only (docs/design.md, "Several Immich servers").
import createError from '@fastify/error'
import DispatcherBase from 'undici/lib/dispatcher/dispatcher.js'
import type { Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { Duplex } from 'node:stream'
import { askImmich, pongFailure } from './ask-immich.js'
import { DEFAULTS, type UPSTREAM_POLICIES } from '../defaults.js'

// a server slower than this to say "pong" is taken for down, whatever the interval
const CHECK_TIMEOUT_MS = 5000

export type UpstreamPolicy = typeof UPSTREAM_POLICIES[number]

/** One Immich server: its pools, whether it is in service, and what it is doing. */
export class ImmichServer {
  /** In service: it answered its last check (and refused no connection since). */
  up = true
  /** What took it out of service, while it is out. */
  failure: string | undefined
  /** Requests and WebSocket tunnels it has now. */
  active = 0
  /** Requests and WebSocket upgrades sent to it so far. */
  sent = 0
  /** A timed check is under way (the next one skips this server). */
  checking = false

  readonly url: URL

  constructor (readonly origin: string, readonly pool: Dispatcher, readonly wellKnown: Dispatcher) {
    this.url = new URL(origin)
  }

  /** Counts a request or tunnel until `done` is called (once). */
  begin (): () => void {
    this.active++
    this.sent++
    let ended = false
    return () => {
      if (ended) return
      ended = true
      this.active--
    }
  }

  /** undefined when it answers its liveness route within `timeoutMs`, else what went wrong. */
  async check (timeoutMs: number): Promise<string | undefined> {
    try {
      const answer = await askImmich(this.wellKnown, { method: 'GET', path: '/api/server/ping', headers: { host: this.url.host } }, timeoutMs)
      return pongFailure(answer.statusCode, answer.body)
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? (error as Error).name
    }
  }
}

/** Errors of a connection that never carried the request: the server is not there. */
const UNREACHED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'])

/** The code of an error that says the server was not reached (in `error` or its causes). */
export function unreached (error: Error): string | undefined {
  let cause: Error | undefined = error
  while (cause !== undefined) {
    const code = (cause as NodeJS.ErrnoException).code
    if (code !== undefined && UNREACHED.has(code)) return code
    cause = cause.cause instanceof Error ? cause.cause : undefined
  }
  return undefined
}

/** Every Immich server is out of service: answered 502 at once, as any unreachable Immich. */
export const NoImmichServerError = createError('IMMICH_PROXY_NO_SERVER', 'no Immich server answers its health check', 502)

export interface ImmichServersOptions {
  policy?: UpstreamPolicy
  /** How often each server's liveness route is asked, in ms (with two servers or more). */
  healthInterval?: number
}

/**
 * The servers and the choice between them. With one server there is no choice to make: it gets
 * every request whatever its state, and nothing asks it on a timer (readiness does, on demand).
 */
export class ImmichServers {
  readonly policy: UpstreamPolicy
  private readonly healthInterval: number
  private next = 0
  private timer: NodeJS.Timeout | undefined
  private log: FastifyBaseLogger | undefined

  constructor (readonly servers: ImmichServer[], options: ImmichServersOptions = {}) {
    this.policy = options.policy ?? DEFAULTS.upstreamPolicy
    this.healthInterval = options.healthInterval ?? DEFAULTS.upstreamHealthInterval
  }

  /** Several servers: one to choose among. */
  get balanced (): boolean {
    return this.servers.length > 1
  }

  /**
   * The server for the next request or upgrade, among those in service, other than `tried`;
   * undefined when none is. least-connections: the fewest requests and tunnels now (ties taken
   * in turn); round-robin: each in turn.
   */
  pick (tried?: ImmichServer): ImmichServer | undefined {
    const servers = this.servers
    if (servers.length === 1) return tried === servers[0] ? undefined : servers[0]
    let chosen: number | undefined
    for (let i = 0; i < servers.length; i++) {
      const index = (this.next + i) % servers.length
      const server = servers[index]
      if (!server.up || server === tried) continue
      if (this.policy === 'round-robin') {
        chosen = index
        break
      }
      if (chosen === undefined || server.active < servers[chosen].active) chosen = index
    }
    if (chosen === undefined) return undefined
    this.next = (chosen + 1) % servers.length
    return servers[chosen]
  }

  /** Whether any server is in service. */
  anyUp (): boolean {
    return this.servers.some(server => server.up)
  }

  /** Takes `server` out of service (it refused a connection, or failed its check). */
  takeOut (server: ImmichServer, failure: string): void {
    if (!this.balanced) return
    server.failure = failure
    if (!server.up) return
    server.up = false
    this.log?.warn({ upstream: server.origin, failure },
      `Immich server ${server.origin} taken out of service (${failure}): requests go to the others until it answers GET /api/server/ping`)
    if (!this.anyUp()) this.log?.error('no Immich server in service: requests get 502 until one answers GET /api/server/ping')
  }

  private putBack (server: ImmichServer): void {
    server.failure = undefined
    if (server.up) return
    server.up = true
    this.log?.info({ upstream: server.origin }, `Immich server ${server.origin} answers again: back in service`)
  }

  /** Asks every server's liveness route now, then every healthInterval (with two servers or more). */
  startChecks (log: FastifyBaseLogger): void {
    this.log = log
    if (!this.balanced || this.timer !== undefined) return
    const checkAll = (): void => {
      for (const server of this.servers) {
        if (server.checking) continue
        server.checking = true
        server.check(Math.min(this.healthInterval, CHECK_TIMEOUT_MS)).then(failure => {
          server.checking = false
          if (failure === undefined) this.putBack(server)
          else this.takeOut(server, failure)
        }, () => { server.checking = false })
      }
    }
    checkAll()
    this.timer = setInterval(checkAll, this.healthInterval).unref()
  }

  stopChecks (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** A dispatcher over the servers' traffic pools (`pool`) or their small ones (`wellKnown`). */
  dispatcher (which: 'pool' | 'wellKnown'): Dispatcher {
    return new ServerChoice(this, which)
  }
}

/**
 * A dispatcher that sends each request to a server ImmichServers picks. Its pools belong to the
 * servers: closing it closes nothing.
 */
class ServerChoice extends DispatcherBase {
  constructor (private readonly set: ImmichServers, private readonly which: 'pool' | 'wellKnown') {
    super()
  }

  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return new Attempt(this.set, this.which, options, handler).start(undefined)
  }

  override async close (): Promise<void> {}
  override async destroy (): Promise<void> {}
}

/**
 * One request's way to a server, and to a second one if the first refused its connection before
 * the request was handed to it (undici calls onConnect as it starts writing): nothing of it was
 * sent, its body not read, so any method may go again. After that, never: an upload is not
 * replayed, nor a request that may have reached Immich.
 */
class Attempt implements Dispatcher.DispatchHandler {
  private connected = false
  private retried = false
  private done: (() => void) | undefined
  private server: ImmichServer | undefined

  constructor (
    private readonly set: ImmichServers,
    private readonly which: 'pool' | 'wellKnown',
    private readonly options: Dispatcher.DispatchOptions,
    private readonly handler: Dispatcher.DispatchHandler
  ) {}

  start (tried: ImmichServer | undefined): boolean {
    const server = this.server = this.set.pick(tried)
    if (server === undefined) {
      const error = new NoImmichServerError()
      // as a pool reports: after dispatch() returns
      process.nextTick(() => this.handler.onError?.(error))
      return true
    }
    this.done = server.begin()
    return server[this.which].dispatch(this.options, this)
  }

  onConnect (abort: (error?: Error) => void): void {
    this.connected = true
    this.handler.onConnect?.(abort)
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    return this.handler.onHeaders?.(statusCode, headers, resume, statusText) ?? true
  }

  onData (chunk: Buffer): boolean {
    return this.handler.onData?.(chunk) ?? true
  }

  onBodySent (chunk: Buffer | number): void {
    (this.handler.onBodySent as ((chunk: Buffer | number) => void) | undefined)?.(chunk)
  }

  onRequestSent (): void {
    (this.handler as { onRequestSent?: () => void }).onRequestSent?.()
  }

  onResponseStarted (): void {
    this.handler.onResponseStarted?.()
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.done?.()
    this.handler.onUpgrade?.(statusCode, headers, socket)
  }

  onComplete (trailers: string[] | null): void {
    this.done?.()
    this.handler.onComplete?.(trailers)
  }

  onError (error: Error): void {
    this.done?.()
    const code = this.connected ? undefined : unreached(error)
    const server = this.server
    if (code !== undefined && server !== undefined) {
      this.set.takeOut(server, code)
      if (this.set.balanced && !this.retried) {
        this.retried = true
        this.start(server)
        return
      }
    }
    this.handler.onError?.(error)
  }
}
