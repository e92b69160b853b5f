// Options that exist only when the Fastify server is created (src/server.ts); tests build their
// servers with the same function so that they run what users run.
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

// One writer on stdout shared by every listener (src/stdout-log.ts): asynchronous, bounded, and
// never in the way of requests or of the exit when nothing reads stdout.
let stdout: LogDestination | undefined
function stdoutDestination (): LogDestination {
  stdout ??= stdoutLog()
  return stdout
}

// One line per record, as in the JSON: a request (or WebSocket) line reads
// `INFO: request GET /api/server/ping 200 {"bytesIn":…,"durationMs":…}`. Only the access log's
// lines carry method, path and status, which the message then shows in place of the fields.
const PRETTY = {
  translateTime: 'SYS:standard',
  singleLine: true,
  messageFormat: '{msg}{if method} {method} {path} {status}{end}',
  ignore: 'pid,hostname,method,path,status'
}

/**
 * pino-pretty's path, or undefined where it is not installed: it is a development dependency, so
 * the image and `npm ci --omit=dev` installs log JSON even on a terminal. Looked up from this
 * file in the bundle (CommonJS), else from the entry script, else the working directory.
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

/** JSON lines for machines; readable lines when a person watches the terminal. */
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
 * Server options that Immich traffic needs. Node's defaults would cut long transfers (a 300 s
 * requestTimeout on Node 20) or refuse long paths, so each is set here on purpose.
 */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: loggerOptions(config),
    // one access-log line per request comes from plugins/observability/access-log.ts instead of Fastify's two
    logController: new LogController({ disableRequestLogging: true }),
    // an idle socket (no byte either way) is closed after PROXY_TIMEOUT, like nginx send_timeout
    // and client_body_timeout; a transfer that keeps moving is never cut. Silence that is
    // Immich's is left to the proxy's upstream timers, which answer 504 (plugins/forwarding/upstream.ts)
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
