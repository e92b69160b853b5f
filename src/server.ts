#!/usr/bin/env node
// Entry point: read the environment once, build the listeners, listen, and shut down through
// one path.
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { ConfigError, parseConfig, type Config } from './config.js'
import { buildRedirectServer, buildServer } from './build.js'
import { CertificateError } from '../plugins/lib/certificates.js'

function fail (message: string): never {
  process.stderr.write(`immich-proxy: ${message}\n`)
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
    return `cannot listen (${code}) on ${(error as Error).message.split(' ').pop() ?? ''}; check HOST, PORT and HTTP_PORT`
  }
  return undefined
}

export async function start (env: Record<string, string | undefined>): Promise<void> {
  let config: Config
  try {
    config = parseConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message)
    throw error
  }

  const servers: FastifyInstance[] = []
  try {
    const main = await buildServer(config)
    servers.push(main)
    const redirect = await buildRedirectServer(config)
    if (redirect !== undefined) servers.push(redirect)

    closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
      if (err !== undefined) main.log.error({ err }, 'closing after an error')
      else main.log.info({ signal }, 'closing')
      await Promise.all(servers.map(server => server.close()))
    })

    await main.listen({ host: config.host, port: config.port })
    if (redirect !== undefined && config.httpPort !== undefined) {
      await redirect.listen({ host: config.host, port: config.httpPort })
    }
  } catch (error) {
    const problem = startupProblem(error, config)
    if (problem === undefined) throw error
    await Promise.allSettled(servers.map(server => server.close()))
    fail(problem)
  }
}

await start(process.env)
