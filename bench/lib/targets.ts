// The proxies under test, each started the way its users run it, pinned to the proxy core with
// one worker, in front of the same upstream.
import type { ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, stopProcess, waitForAnswer } from './processes.js'
import { START_ENTRY, START_FLAGS } from '../../test/helpers/start-flags.js'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))

export const PROXY_CORE = 0
export const LOAD_CORE = 1

export interface Context {
  /** http://127.0.0.1:port of the upstream */
  upstream: string
  /** scratch directory for configs, logs and temp files */
  dir: string
  certFile: string
  keyFile: string
  /** the open-file limit every process gets */
  maxFiles: number
  /** configure for as many connections as the open-file limit allows (the WebSocket figures) */
  manyConnections?: boolean
}

export interface Running {
  url: string
  /** the process whose tree is measured; undefined for "direct" */
  pid?: number
  /** ms from spawn to the first proxied 200 */
  startMs: number
  stop: () => Promise<void>
}

export interface Target {
  name: string
  tls: boolean
  start: (context: Context) => Promise<Running>
}

async function launch (name: string, context: Context, scheme: 'http' | 'https', spawnIt: (port: number, dir: string) => ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<Running> {
  const port = await freePort()
  const dir = mkdtempSync(join(context.dir, `${name}-`))
  // nginx's workers run as nobody and must reach their temp paths
  chmodSync(dir, 0o755)
  const url = `${scheme}://127.0.0.1:${port}`
  const since = performance.now()
  const child = spawnIt(port, dir)
  try {
    const startMs = await waitForAnswer(`${url}/small`, since, child)
    return { url, pid: child.pid, startMs, stop: async () => { await stopProcess(child, signal) } }
  } catch (error) {
    await stopProcess(child, 'SIGKILL')
    throw error
  }
}

/** nginx from Debian: its stock nginx.conf http block plus the Immich docs' server block. */
function nginxConfig (port: number, dir: string, context: Context, options: { keepalive: boolean, tls: boolean }): string {
  const upstreamHost = new URL(context.upstream).host
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `  ${kind}_temp_path ${dir}/${kind};`).join('\n')
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
# Debian's 768 would refuse 500 clients plus their 500 upstream connections. For the 10 000
# WebSockets (20 000 connections), above the open-file limit on purpose: nginx starts closing
# connections that wait for their request once fewer than 1/16 of worker_connections are free.
# (nginx allocates them all at start: that instance does not count for idle RSS.)
worker_rlimit_nofile ${context.maxFiles};
events {
  worker_connections ${context.manyConnections === true ? 65535 : 4096};
}
http {
  # Debian's /etc/nginx/nginx.conf
  sendfile on;
  tcp_nopush on;
  types_hash_max_size 2048;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
  ssl_prefer_server_ciphers on;
  access_log ${dir}/access.log;
  gzip on;
${temp}
${options.keepalive
? `  # the usual keep-alive variant: a pooled upstream, Connection cleared unless upgrading
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }
  upstream immich {
    server ${upstreamHost};
    keepalive 64;
  }
`
: ''}
  # the Immich docs' example (docs/administration/reverse-proxy)
  server {
    listen 127.0.0.1:${port}${options.tls ? ' ssl' : ''};
    server_name _;
${options.tls ? `    ssl_certificate ${context.certFile};\n    ssl_certificate_key ${context.keyFile};\n` : ''}
    client_max_body_size 50000M;

    proxy_set_header Host              $host;
    proxy_set_header X-Real-IP         $remote_addr;
    proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;

    proxy_http_version 1.1;
    proxy_set_header   Upgrade    $http_upgrade;
    proxy_set_header   Connection ${options.keepalive ? '$connection_upgrade' : '"upgrade"'};
    proxy_redirect     off;

    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    send_timeout       600s;

    location / {
      proxy_pass http://${options.keepalive ? 'immich' : upstreamHost};
    }
  }
}
`
}

function nginx (name: string, options: { keepalive: boolean, tls: boolean }): Target {
  return {
    name,
    tls: options.tls,
    start: async context => await launch(name, context, options.tls ? 'https' : 'http', (port, dir) => {
      const conf = join(dir, 'nginx.conf')
      writeFileSync(conf, nginxConfig(port, dir, context, options))
      return startProcess('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], { core: PROXY_CORE, env: {}, logFile: join(dir, 'stdout.log') })
    }, 'SIGTERM')
  }
}

const haproxy: Target = {
  name: 'haproxy',
  tls: false,
  start: async context => await launch('haproxy', context, 'http', (port, dir) => {
    const conf = join(dir, 'haproxy.cfg')
    // Debian's defaults less syslog (no /dev/log here: the access log goes to a file instead),
    // one thread, the reference config's 600 s timeouts and forwarded headers.
    writeFileSync(conf, `global
  nbthread 1
  maxconn ${Math.floor((context.maxFiles - 200) / 2)}
  log stdout format raw local0

defaults
  log global
  mode http
  option httplog
  option dontlognull
  option forwardfor
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout tunnel 600s

frontend immich
  bind 127.0.0.1:${port}
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto http
  default_backend immich

backend immich
  server immich ${new URL(context.upstream).host}
`)
    return startProcess('haproxy', ['-db', '-f', conf], { core: PROXY_CORE, env: {}, logFile: join(dir, 'haproxy.log') })
  })
}

/**
 * `flags` are extra node flags (the profiler's --cpu-prof); `stopSignal` SIGINT for a profile,
 * which node writes on a clean exit.
 */
export function immichProxy (name: string, tls: boolean, flags: string[] = [], stopSignal: NodeJS.Signals = 'SIGTERM'): Target {
  return {
    name,
    tls,
    start: async context => await launch(name, context, tls ? 'https' : 'http', (port, dir) => {
      // `npm start` without npm: the built server with the flag package.json gives it, production
      // defaults (LOG_LEVEL=info, access log on) and the log in a file as `docker logs` would keep it
      const env: Record<string, string> = {
        NODE_ENV: 'production',
        UPSTREAM_URL: context.upstream,
        HOST: '127.0.0.1',
        PORT: String(port),
        ADMIN_PORT: 'off',
        LOG_LEVEL: 'info'
      }
      if (tls) Object.assign(env, { TLS_CERT_FILE: context.certFile, TLS_KEY_FILE: context.keyFile })
      return startProcess(process.execPath, [...START_FLAGS, ...flags, START_ENTRY], { core: PROXY_CORE, env, cwd: REPO, logFile: join(dir, 'immich-proxy.log') })
    }, stopSignal)
  }
}

/**
 * A Node script of bench/ taking UPSTREAM_URL and PORT: @fastify/http-proxy bare as its README
 * shows it or configured for Immich, or the TCP relay (the ceiling of a Node proxy).
 */
function nodeScript (name: string, script: string): Target {
  return {
    name,
    tls: false,
    start: async context => await launch(name, context, 'http', (port, dir) => {
      return startProcess(process.execPath, [script], {
        core: PROXY_CORE,
        env: { UPSTREAM_URL: context.upstream, PORT: String(port), NODE_ENV: 'production' },
        cwd: REPO,
        logFile: join(dir, 'stdout.log')
      })
    })
  }
}

const direct: Target = {
  name: 'direct',
  tls: false,
  start: async context => ({ url: context.upstream, startMs: NaN, stop: async () => {} })
}

export const TARGETS: Target[] = [
  direct,
  immichProxy('immich-proxy', false),
  nginx('nginx', { keepalive: false, tls: false }),
  nginx('nginx-keepalive', { keepalive: true, tls: false }),
  haproxy,
  nodeScript('fastify-http-proxy', 'bench/fastify-http-proxy.mjs'),
  nodeScript('fastify-http-proxy-configured', 'bench/fastify-http-proxy-configured.mjs'),
  nodeScript('node-tcp-relay', 'bench/node-tcp-relay.mjs'),
  immichProxy('immich-proxy-tls', true),
  nginx('nginx-tls', { keepalive: false, tls: true })
]

/** The upstream, on the load core. */
export async function startUpstream (dir: string): Promise<{ url: string, pid: number, stop: () => Promise<void> }> {
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const child = startProcess(process.execPath, ['bench/upstream.mjs'], { core: LOAD_CORE, env: { PORT: String(port) }, cwd: REPO, logFile: join(dir, 'upstream.log') })
  const url = `http://127.0.0.1:${port}`
  await waitForAnswer(`${url}/small`, performance.now(), child)
  return { url, pid: child.pid as number, stop: async () => { await stopProcess(child) } }
}
