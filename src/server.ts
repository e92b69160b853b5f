#!/usr/bin/env -S node --expose-gc
// Entry point: read the environment once (with ./.env), answer --help and --healthcheck, start
// the listeners (src/run.ts) and shut down through one path, on signals and on fatal errors alike.
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

/** Start-up errors the user can act on, as one line naming the variable. */
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
 * `--healthcheck`, the container's HEALTHCHECK: exit 0 when this process's admin listener says
 * it is alive. Liveness, not readiness: Immich still starting must not mark the proxy unhealthy.
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

/**
 * `env` is process.env, to which the variables of ./.env that it lacks are added first; an
 * environment given as a plain object is used as it is.
 */
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

  // One shutdown path for signals and fatal errors: stop accepting, let requests in flight
  // (uploads) finish for up to SHUTDOWN_TIMEOUT, end the WebSocket tunnels, then exit 0.
  // Past SHUTDOWN_TIMEOUT close-with-grace exits with code 1; a fatal error also exits 1.
  // Installed before the listeners start: as PID 1 in a container, a signal without a handler
  // would be ignored.
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
  import('./immich-ping.js').then(async ({ checkImmich }) => await checkImmich(config.upstream, log))
    .catch((error: unknown) => log.warn({ err: error }, 'the check of UPSTREAM_URL failed'))
}

// Not a top-level await: the bundle users run (scripts/bundle.mjs) is CommonJS, which has none.
// An error escaping start() is thrown as an uncaught exception, as a top-level await would
// have it (close-with-grace, once set up, logs it and exits with code 1).
start(process.env, process.argv.slice(2)).catch((error: unknown) => {
  process.nextTick(() => { throw error })
})
