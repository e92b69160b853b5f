#!/usr/bin/env node
// Entry point: read the environment once, create the server with the options that only exist
// at creation, listen, and shut down through one path.
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import { ConfigError, parseConfig, type Config } from './config.js'
import app from './app.js'
import { serverOptions } from './server-options.js'

export async function start (env: Record<string, string | undefined>): Promise<void> {
  let config: Config
  try {
    config = parseConfig(env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`immich-proxy: ${error.message}\n`)
    process.exit(1)
  }

  const server = Fastify(serverOptions(config))
  await server.register(app, config)

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) server.log.error({ err }, 'closing after an error')
    else server.log.info({ signal }, 'closing')
    await server.close()
  })

  await server.listen({ host: config.host, port: config.port })
}

await start(process.env)
