// "Bare @fastify/http-proxy" in bench/run.ts: what someone gets by writing the few lines the
// library's README shows, WebSockets on. Plain JavaScript so that it runs on bare `node` with
// no loader in the measured process. Env: UPSTREAM_URL, PORT.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const app = Fastify({ logger: false })
await app.register(proxy, { upstream: process.env.UPSTREAM_URL, websocket: true })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => process.exit(0))
