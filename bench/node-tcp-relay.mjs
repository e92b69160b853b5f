// "Node TCP relay" in bench/run.ts: each client connection piped to a new connection to the
// upstream, no HTTP at all — the ceiling of any Node proxy on one core (what the event loop, the
// sockets and pipe() cost alone). Not a proxy anyone should run: no headers, no timeouts, no
// guard. Env: UPSTREAM_URL, PORT.
import { connect, createServer } from 'node:net'

const upstream = new URL(process.env.UPSTREAM_URL)
const server = createServer(client => {
  const immich = connect(Number(upstream.port), upstream.hostname)
  client.setNoDelay(true)
  immich.setNoDelay(true)
  client.pipe(immich)
  immich.pipe(client)
  client.on('error', () => immich.destroy())
  immich.on('error', () => client.destroy())
  client.on('close', () => immich.destroy())
  immich.on('close', () => client.destroy())
})
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
