// Shared pieces of the access-key tests: key files in a temporary directory, the unlock form
// posted as a browser posts it, the cookie it sets, and a stand-in for Immich's web app.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request, type Dispatcher } from 'undici'
import { WebSocketServer } from 'ws'
import { startUpstream, type Upstream } from '../helper.js'
import { echo } from './websocket.js'

export const UNLOCK = '/.immich-proxy/unlock'
export const COOKIE = 'immich_proxy_access'

/** A key file (one key per line) in its own temporary directory, removed when the test ends. */
export function keyFile (t: Test, text: string): { path: string, write: (text: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'immich-proxy-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'access_keys')
  const write = (text: string): void => writeFileSync(path, text)
  write(text)
  return { path, write }
}

/** The status of one GET carrying `key` (no header when undefined); the body is read and dropped. */
export async function statusWith (url: string, key?: string, dispatcher?: Dispatcher): Promise<number> {
  const response = await request(url, { headers: key === undefined ? {} : { 'x-access-key': key }, dispatcher })
  await response.body.dump()
  return response.statusCode
}

export interface UnlockAnswer {
  status: number
  location?: string
  /** The whole Set-Cookie header, attributes included. */
  setCookie?: string
  /** Just `immich_proxy_access=<value>`, what a browser sends back. */
  cookie?: string
  retryAfter?: string
  body: string
}

/** Posts the unlock form as a browser does (urlencoded `key` and `next`), with `headers` added. */
export async function postUnlock (origin: string, form: Record<string, string>, dispatcher?: Dispatcher, headers: Record<string, string> = {}): Promise<UnlockAnswer> {
  const response = await request(origin + UNLOCK, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers },
    body: new URLSearchParams(form).toString(),
    dispatcher
  })
  const header = (name: string): string | undefined => {
    const value = response.headers[name]
    return Array.isArray(value) ? value.join('\n') : value
  }
  const setCookie = header('set-cookie')
  return {
    status: response.statusCode,
    location: header('location'),
    setCookie,
    cookie: setCookie?.split(';')[0],
    retryAfter: header('retry-after'),
    body: await response.body.text()
  }
}

/**
 * A stand-in for Immich's web app: `page` as text/html (setting one Immich cookie) on GET / and
 * /photos…, JSON echoing the Cookie
 * header elsewhere, and a WebSocket echo (what Immich's socket.io does, minus the protocol) on
 * every upgrade. `upgrades` counts the handshakes that reached it.
 */
export async function startWebApp (t: Test, page: string): Promise<Upstream & { upgrades: () => number }> {
  const upstream = await startUpstream(t, (req, res) => {
    if (req.method === 'GET' && (req.url === '/' || req.url?.startsWith('/photos') === true)) {
      // one of Immich's own cookies, which must keep reaching it past the guard
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': 'immich_is_authenticated=true; Path=/' }).end(page)
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url, cookie: req.headers.cookie ?? null }))
  })
  const wss = new WebSocketServer({ noServer: true })
  let upgrades = 0
  upstream.server.on('upgrade', (req, socket, head) => {
    upgrades++
    wss.handleUpgrade(req, socket, head, ws => echo(ws))
  })
  t.teardown(() => {
    for (const ws of wss.clients) ws.terminate()
    wss.close()
  })
  return { ...upstream, upgrades: () => upgrades }
}
