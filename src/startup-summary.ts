// The one line an operator reads at start to know what runs; never a key or a file's content.
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { formatSize } from './nginx-units.js'

/** Where the main listener's certificate comes from; `off` is plain HTTP. */
export type TlsMode = 'off' | 'files' | 'self-signed' | 'acme'

export function tlsMode (config: Pick<Config, 'tls' | 'acme'>): TlsMode {
  if (config.tls === undefined) return 'off'
  if (config.acme !== undefined) return 'acme'
  return config.tls.selfSigned ? 'self-signed' : 'files'
}

function url (scheme: string, server: FastifyInstance | undefined, host: string): string | undefined {
  const address = server?.server.address()
  if (address === null || address === undefined || typeof address === 'string') return undefined
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

export interface Listening {
  main: FastifyInstance
  redirect?: FastifyInstance
  admin?: FastifyInstance
}

/**
 * `immich-proxy started: Immich at http://immich-server:2283; TLS files, HTTP/2 on, access key
 * on, body limit 50000M; main https://0.0.0.0:8443, redirect http://0.0.0.0:8080, admin
 * http://127.0.0.1:9090; settings from .env and the environment`
 */
export function startupSummary (config: Config, listening: Listening, settingsFrom: string): string {
  const tls = tlsMode(config)
  const listeners = [
    ['main', url(tls === 'off' ? 'http' : 'https', listening.main, config.host)],
    ['redirect', url('http', listening.redirect, config.host)],
    ['admin', url('http', listening.admin, config.adminHost)]
  ].filter(([, at]) => at !== undefined).map(([name, at]) => `${name as string} ${at as string}`)
  const accessKey = config.accessKeys.length > 0 || config.accessKeyFile !== undefined
  const immich = config.upstreams.length > 1 ? `${config.upstreams.join(', ')} (${config.upstreamPolicy})` : config.upstream
  return `immich-proxy started: Immich at ${immich}; ` +
    `TLS ${tls}, HTTP/2 ${tls !== 'off' && config.http2 ? 'on' : 'off'}, ` +
    // named only when set: most proxies have none, and the line stays as it was for them
    (config.tlsClientCaFile === undefined ? '' : 'client certificates on, ') +
    `access key ${accessKey ? 'on' : 'off'}, ` +
    `body limit ${config.bodyLimit === 0 ? 'none' : formatSize(config.bodyLimit)}; ` +
    `${listeners.join(', ')}; settings from ${settingsFrom}`
}
