// Tests build their servers with these functions too, so that they run what users run.
import { LogController, type FastifyServerOptions } from 'fastify'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Config } from './config.js'
import { stdoutLog, type LogDestination } from './stdout-log.js'
import { DEFAULTS } from '../plugins/defaults.js'

// Nothing the proxy logs carries these, but an error serializer or a future debug line might:
// pino removes them wherever they appear.
const SECRET_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'req.headers["x-access-key"]',
  'req.headers["x-immich-user-token"]', 'req.headers["x-immich-session-token"]', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'headers["x-api-key"]', 'headers["x-access-key"]', 'headers["set-cookie"]'
]

let stdout: LogDestination | undefined
function stdoutDestination (): LogDestination {
  stdout ??= stdoutLog()
  return stdout
}

// `INFO: request GET /api/server/ping 200 {"bytesIn":…}`: only access-log lines carry method,
// path and status, which the message shows in place of the fields.
const PRETTY = {
  translateTime: 'SYS:standard',
  singleLine: true,
  messageFormat: '{msg}{if method} {method} {path} {status}{end}',
  ignore: 'pid,hostname,method,path,status'
}

/**
 * undefined where pino-pretty is not installed (a dev dependency: `npm ci --omit=dev` logs JSON
 * even on a terminal). Looked up from the bundle, else the entry script, else the working directory.
 */
function prettyPrinter (): string | undefined {
  const bases = [typeof __filename === 'string' ? __filename : undefined, process.argv[1], join(process.cwd(), 'index.js')]
  for (const base of bases) {
    if (base === undefined) continue
    try {
      return createRequire(base).resolve('pino-pretty')
    } catch {}
  }
  return undefined
}

export function loggerOptions (config: Config, tty = process.stdout.isTTY === true): FastifyServerOptions['logger'] {
  const pretty = tty ? prettyPrinter() : undefined
  return {
    level: config.logLevel,
    redact: { paths: SECRET_PATHS, censor: '[REDACTED]' },
    ...(pretty !== undefined
      ? { transport: { target: pretty, options: PRETTY } }
      : { stream: stdoutDestination() })
  }
}

/**
 * Node's defaults would cut long transfers (a 300 s requestTimeout on Node 20) or refuse long
 * paths, so each option is set on purpose.
 */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: loggerOptions(config),
    logController: new LogController({ disableRequestLogging: true }),
    // an idle socket is closed after PROXY_TIMEOUT, like nginx send_timeout and
    // client_body_timeout; Immich's silence is left to the upstream timers, which answer 504
    connectionTimeout: config.proxyTimeout,
    requestTimeout: 0,
    keepAliveTimeout: DEFAULTS.keepAliveTimeout,
    // the catch-all route's parameter is the whole path; find-my-way's default of 100 characters
    // would turn long Immich paths into 404s
    routerOptions: { maxParamLength: 65_536 },
    return503OnClosing: true,
    forceCloseConnections: 'idle'
  }
}
