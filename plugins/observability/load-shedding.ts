// A new request gets 503 + Retry-After while the event loop lags or the RSS is past its limit;
// the answer and the sampling (a one-second mean of the loop's delay) are @fastify/under-pressure's.
import createError from '@fastify/error'
import fp from 'fastify-plugin'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { DEFAULTS } from '../defaults.js'

export interface LoadSheddingOptions {
  /** Mean event-loop delay, in ms, past which new requests are shed. 0: never. */
  maxEventLoopDelay: number
  /** Resident set size, in bytes, past which new requests are shed. 0: never. */
  maxRssBytes: number
  /** Seconds a shed client is told to wait (Retry-After). */
  retryAfter?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    isShedding: () => boolean
  }
}

const UnderPressureError = createError('FST_UNDER_PRESSURE', 'Service Unavailable', 503)

const SAMPLE_INTERVAL = 1000
const RESOLUTION = 10

export default fp<LoadSheddingOptions>(async function loadShedding (fastify, opts) {
  const retryAfter = opts.retryAfter ?? DEFAULTS.retryAfter
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION })
  histogram.enable()
  let eventLoopDelay = 0
  let rssBytes = 0
  let rssFailing = false

  let startingUp = true
  const sample = (): void => {
    eventLoopDelay = startingUp ? 0 : Math.max(0, histogram.mean / 1e6 - RESOLUTION)
    startingUp = false
    if (Number.isNaN(eventLoopDelay)) eventLoopDelay = Infinity
    histogram.reset()
    if (opts.maxRssBytes <= 0) return
    try {
      rssBytes = process.memoryUsage.rss()
      rssFailing = false
    } catch (error) {
      // EMFILE/ENFILE at the fd limit: said once per spell, not every second
      if (!rssFailing) fastify.log.warn({ err: error }, 'cannot read the process RSS; load shedding keeps the last reading')
      rssFailing = true
    }
  }
  const timer = setInterval(sample, SAMPLE_INTERVAL).unref()
  // Start-up blocks the loop (plugins, certificates): that is not load, and would shed the first
  // requests. The histogram records a block only at the loop's next turn, which may come after
  // onReady, so the first sample after it is dropped.
  fastify.addHook('onReady', async () => {
    eventLoopDelay = 0
    startingUp = true
  })
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    histogram.disable()
  })

  const isShedding = (): boolean =>
    (opts.maxEventLoopDelay > 0 && eventLoopDelay > opts.maxEventLoopDelay) ||
    (opts.maxRssBytes > 0 && rssBytes > opts.maxRssBytes)
  fastify.decorate('isShedding', isShedding)
  if (opts.maxEventLoopDelay <= 0 && opts.maxRssBytes <= 0) return

  fastify.addHook('onRequest', (request, reply, done) => {
    if (!isShedding()) {
      done()
      return
    }
    reply.code(503).header('retry-after', retryAfter)
    done(new UnderPressureError())
  })
}, { name: 'immich-proxy-load-shedding', fastify: '5.x' })
