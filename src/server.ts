#!/usr/bin/env -S node --expose-gc
// Entry point: read the environment once (with ./.env), answer --help and --healthcheck, start the
// listeners and shut down through one path, on signals and on fatal errors alike.
import closeWithGrace from 'close-with-grace'
import { join } from 'node:path'
import { ConfigError, misspelledSettings, parseConfig, type Config } from './config.js'
import { run, type Running } from './run.js'
import { helpText } from './help.js'
import { EnvFileError, loadEnvFile } from './env-file.js'
import { startupSummary } from './startup-summary.js'
import { CertificateError } from '../plugins/tls/certificates.js'

/** Every line prefixed, so that each stands on its own in `docker logs` or a journal. */
function prefixed (message: string): string {
  return message.split('\n').map(line => `immich-proxy: ${line}\n`).join('')
}

function fail (message: string): never {
  process.stderr.write(prefixed(message))
  process.exit(1)
}

function startupProblem (error: unknown, config: Config): string | undefined {
  if (error instanceof ConfigError || error instanceof CertificateError) return error.message
  const code = (error as NodeJS.ErrnoException).code
  const path = (error as NodeJS.ErrnoException).path
  if (code !== undefined && path !== undefined && path === config.accessKeyFile) {
    return `ACCESS_KEY_FILE=${JSON.stringify(path)} cannot be read (${code}), e.g. ACCESS_KEY_FILE=/run/secrets/immich_access_keys`
  }
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    return `cannot listen (${code}) on ${(error as Error).message.split(' ').pop() ?? ''}; check HOST, PORT, HTTP_PORT and ADMIN_PORT`
  }
  return undefined
}

/**
 * The container's HEALTHCHECK. Liveness, not readiness: Immich still starting must not mark the
 * proxy unhealthy.
 */
async function healthcheck (config: Config): Promise<never> {
  if (config.adminPort === undefined) fail('--healthcheck needs the admin listener; ADMIN_PORT is off')
  const host = config.adminHost === '0.0.0.0' || config.adminHost === '::' ? '127.0.0.1' : config.adminHost
  try {
    const response = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${config.adminPort}/livez`, { signal: AbortSignal.timeout(4000) })
    process.exit(response.ok ? 0 : 1)
  } catch (error) {
    fail(`health check failed: ${(error as Error).message}`)
  }
}

/** ./.env is added to `env` only when it is process.env. */
export async function start (env: Record<string, string | undefined>, args: string[]): Promise<void> {
  const envFile = join(process.cwd(), '.env')
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(helpText())
    return
  }
  let fromFile = false
  try {
    fromFile = env === process.env && loadEnvFile(envFile)
  } catch (error) {
    if (error instanceof EnvFileError) fail(error.message)
    throw error
  }
  let config: Config
  try {
    config = parseConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message)
    throw error
  }
  if (args.includes('--healthcheck')) await healthcheck(config)

  // Stop accepting, let requests in flight finish for up to SHUTDOWN_TIMEOUT (then exit 1), end
  // the tunnels. Installed before the listeners start: as PID 1 in a container, a signal without
  // a handler would be ignored.
  let running: Running | undefined
  closeWithGrace({
    delay: config.shutdownTimeout,
    logger: {
      error: (message: unknown) => {
        if (running !== undefined) running.main.log.error(message)
        else process.stderr.write(prefixed(String(message)))
      }
    },
    onTimeout: delay => {
      running?.main.log.error({ shutdownTimeoutMs: delay }, 'closing: SHUTDOWN_TIMEOUT reached with requests still in flight; exiting')
    }
  }, async ({ signal, err }) => {
    if (running === undefined) {
      if (err !== undefined) process.stderr.write(prefixed(err.stack ?? err.message))
      return
    }
    if (err !== undefined) running.main.log.error({ err }, 'closing after an error')
    else running.main.log.info({ signal }, 'closing: no new connections; waiting for requests in flight')
    const began = Date.now()
    await running.close()
    running.main.log.info({ drainMs: Date.now() - began }, 'closed')
  })

  try {
    running = await run(config)
  } catch (error) {
    const problem = startupProblem(error, config)
    if (problem === undefined) throw error
    fail(problem)
  }
  const log = running.main.log
  for (const { name, meant } of misspelledSettings(env)) {
    log.warn(`${name} is not a setting of immich-proxy and is ignored; did you mean ${meant}?`)
  }
  log.info(startupSummary(config, running, fromFile ? `${envFile} and the environment` : 'the environment'))
  // after listening, never in its way: Immich may well start after the proxy
  import('./immich-ping.js').then(async ({ checkImmich }) => { await Promise.all(config.upstreams.map(async upstream => await checkImmich(upstream, log))) })
    .catch((error: unknown) => log.warn({ err: error }, 'the check of UPSTREAM_URL failed'))
}

// Not a top-level await: the bundle (scripts/bundle.mjs) is CommonJS. An error escaping start()
// becomes an uncaught exception, as with a top-level await (close-with-grace logs it, exits 1).
start(process.env, process.argv.slice(2)).catch((error: unknown) => {
  process.nextTick(() => { throw error })
})
