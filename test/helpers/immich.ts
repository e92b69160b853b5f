// A stand-in for Immich's authentication, following test/fixtures/immich-auth.json: its
// credential order, validateToken's answers, the discovery document, and the few API calls the
// CLI makes to log in and upload (users/me, api-keys/me, server/media-types,
// assets/bulk-upload-check, assets). Every other path answers 200 to an authenticated request
// and 401 otherwise, as Immich's guard does.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './root.js'

export const IMMICH_AUTH = JSON.parse(readFileSync(join(root, 'test/fixtures/immich-auth.json'), 'utf8')) as {
  validateToken: Record<'valid' | 'invalid' | 'invalidApiKey' | 'missing' | 'shareCredential' | 'limitedApiKeyOnOlderServers', { status: number, body: unknown }>
  wellKnown: { path: string, body: unknown }
}

export interface StandInState {
  sessions: Set<string>
  /** API key → its permissions ('all' or a list) */
  apiKeys: Map<string, string[]>
  /** How many times validateToken was asked. */
  validations: number
  /** What arrived, in order. */
  seen: Array<{ method: string, url: string, headers: IncomingMessage['headers'] }>
  /** Bytes of each upload (POST /api/assets) received whole. */
  uploads: number[]
  /** Answer validateToken with this status instead (an Immich in trouble). */
  validateTokenStatus?: number
  /** Shared links by key: their id, slug and password, if any. */
  shareLinks: Map<string, { id: string, slug?: string, password?: string, assetId: string }>
}

// Immich's shared-link routes (@Authenticated({ sharedLink: true })), the ones the stand-in's
// share page uses; every other authenticated route answers a share credential 403
const SHARE_ROUTES = [/^\/api\/shared-links\/(me|login)$/, /^\/api\/assets\/[^/]+(\/thumbnail|\/original|\/video\/playback)?$/, /^\/api\/albums\/[^/]+$/, /^\/api\/timeline\/buckets?$/, /^\/api\/download\/(info|archive)$/]

/**
 * The web app's page for a shared link, in miniature: like Immich's, a shell whose script reads
 * the server settings and the link (`?key=` or `?slug=` from the URL), then shows the link's
 * photo and video and asks for the download size, each call carrying the link's credential.
 */
export const SHARE_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Shared</title><link rel="icon" href="/favicon.ico"><link rel="stylesheet" href="/custom.css"></head>
<body><p id="state">loading</p><script src="/_app/immutable/entry/start.js"></script></body></html>`

export const SHARE_PAGE_SCRIPT = `
const [, kind, value] = location.pathname.match(/^\\/(share|s)\\/([^/]+)/)
const credential = (kind === 'share' ? 'key=' : 'slug=') + value
const json = async (path, init) => { const r = await fetch(path, init); if (!r.ok) throw new Error(path + ' ' + r.status); return r.json() }
;(async () => {
  await json('/api/server/config'); await json('/api/server/features')
  const link = await json('/api/shared-links/me?' + credential)
  const asset = link.assets[0].id
  await json('/api/assets/' + asset + '?' + credential)
  await json('/api/timeline/buckets?albumId=' + link.id + '&' + credential)
  await json('/api/download/info?' + credential, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ assetIds: [asset] }) })
  const img = new Image(); img.src = '/api/assets/' + asset + '/thumbnail?' + credential + '&size=preview'
  await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = () => reject(new Error('thumbnail')) })
  document.getElementById('state').textContent = 'shown ' + asset
})().catch(error => { document.getElementById('state').textContent = 'failed: ' + error.message })
`

// a 1x1 PNG
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64')

function linkToken (link: { id: string, password?: string }): string {
  return Buffer.from(`${link.id}-${link.password ?? ''}`).toString('base64')
}

type Auth = { kind: 'session' | 'api-key', value: string } | { kind: 'share', value: string } | undefined

function cookie (header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const [key, ...value] = pair.trim().split('=')
    if (key === name) return value.join('=')
  }
  return undefined
}

/** Immich's validate(): the first credential present, in its order. */
function credentialOf (req: IncomingMessage): Auth {
  const h = req.headers
  const query = new URL(req.url ?? '/', 'http://x').searchParams
  const one = (name: string): string | undefined => {
    const value = h[name]
    return (Array.isArray(value) ? value[0] : value) || undefined
  }
  const key = one('x-immich-share-key') ?? (query.get('key') || undefined)
  if (key !== undefined) return { kind: 'share', value: key }
  const slug = one('x-immich-share-slug') ?? (query.get('slug') || undefined)
  if (slug !== undefined) return { kind: 'share', value: `slug:${slug}` }
  const [scheme, token] = (one('authorization') ?? '').split(' ')
  const session = one('x-immich-user-token') ?? one('x-immich-session-token') ?? (query.get('sessionKey') || undefined) ??
    (scheme.toLowerCase() === 'bearer' ? token : undefined) ?? cookie(one('cookie'), 'immich_access_token')
  if (session !== undefined) return { kind: 'session', value: session }
  const apiKey = one('x-api-key') ?? (query.get('apiKey') || undefined)
  return apiKey === undefined ? undefined : { kind: 'api-key', value: apiKey }
}

function json (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
}

export function immichStandIn (state: Partial<StandInState> = {}): { state: StandInState, handler: (req: IncomingMessage, res: ServerResponse) => void } {
  const s: StandInState = { sessions: new Set(), apiKeys: new Map(), validations: 0, seen: [], uploads: [], shareLinks: new Map(), ...state }
  const linkOf = (value: string): { key: string, id: string, slug?: string, password?: string, assetId: string } | undefined => {
    if (value.startsWith('slug:')) {
      for (const [key, link] of s.shareLinks) if (link.slug === value.slice(5)) return { key, ...link }
      return undefined
    }
    const link = s.shareLinks.get(value)
    return link === undefined ? undefined : { key: value, ...link }
  }
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    s.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    const path = (req.url ?? '/').split('?')[0]
    const body: Buffer[] = []
    req.on('data', (chunk: Buffer) => body.push(chunk))
    req.on('error', () => {})
    req.on('end', () => {
      if (path === IMMICH_AUTH.wellKnown.path) return json(res, 200, IMMICH_AUTH.wellKnown.body)
      if (path === '/api/server/ping') return json(res, 200, { res: 'pong' })
      if (path === '/api/server/media-types') return json(res, 200, { image: ['.jpg', '.jpeg', '.png'], video: ['.mp4'], sidecar: ['.xmp'] })
      if (path === '/api/server/config' || path === '/api/server/features') return json(res, 200, {})
      if (path === '/_app/immutable/entry/start.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' })
        return res.end(SHARE_PAGE_SCRIPT)
      }
      if (path === '/favicon.ico' || path === '/custom.css') return res.end('')
      const page = /^\/(share|s)\/([^/]+)/.exec(path)
      if (page !== null && req.method === 'GET') {
        // Immich serves the web app's shell for any page; for a link it also reads the link
        const found = linkOf(page[1] === 'share' ? page[2] : `slug:${decodeURIComponent(page[2])}`)
        res.writeHead(found === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        return res.end(SHARE_PAGE)
      }
      const auth = credentialOf(req)
      if (path === '/api/auth/validateToken' && req.method === 'POST') {
        s.validations++
        if (s.validateTokenStatus !== undefined) return json(res, s.validateTokenStatus, { message: 'stand-in trouble' })
      }
      const answers = IMMICH_AUTH.validateToken
      if (auth === undefined) return json(res, answers.missing.status, answers.missing.body)
      if (auth.kind === 'share') {
        const link = linkOf(auth.value)
        if (link === undefined) return json(res, 401, { message: auth.value.startsWith('slug:') ? 'Invalid share slug' : 'Invalid share key' })
        if (!SHARE_ROUTES.some(route => route.test(path))) return json(res, answers.shareCredential.status, answers.shareCredential.body)
        const tokens = (cookie(req.headers.cookie, 'immich_shared_link_token') ?? '').split(',')
        if (path === '/api/shared-links/login') {
          if (link.password === undefined) return json(res, 400, { message: 'Shared link is not password protected' })
          const { password } = JSON.parse(Buffer.concat(body).toString() || '{}') as { password?: string }
          if (password !== link.password) return json(res, 401, { message: 'Invalid password' })
          res.setHeader('set-cookie', `immich_shared_link_token=${linkToken(link)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400`)
          return json(res, 201, { id: link.id, key: link.key })
        }
        if (path === '/api/shared-links/me') {
          if (link.password !== undefined && !tokens.includes(linkToken(link))) return json(res, 401, { message: 'Password required' })
          return json(res, 200, { id: link.id, key: link.key, slug: link.slug ?? null, type: 'INDIVIDUAL', assets: [{ id: link.assetId }] })
        }
        if (path.endsWith('/thumbnail')) {
          res.writeHead(200, { 'content-type': 'image/png' })
          return res.end(PNG)
        }
        return json(res, 200, { ok: true, path, link: link.id })
      }
      const permissions = auth.kind === 'api-key' ? s.apiKeys.get(auth.value) : s.sessions.has(auth.value) ? ['all'] : undefined
      if (permissions === undefined) {
        const invalid = auth.kind === 'api-key' ? answers.invalidApiKey : answers.invalid
        return json(res, invalid.status, invalid.body)
      }
      if (path === '/api/auth/validateToken') {
        if (!permissions.includes('all')) return json(res, answers.limitedApiKeyOnOlderServers.status, answers.limitedApiKeyOnOlderServers.body)
        return json(res, answers.valid.status, answers.valid.body)
      }
      if (path === '/api/users/me') return json(res, 200, { id: 'u1', email: 'cli@example.org', name: 'CLI user' })
      if (path === '/api/api-keys/me') return json(res, 200, { id: 'k1', name: 'cli', permissions })
      if (path === '/api/assets/bulk-upload-check') {
        const { assets } = JSON.parse(Buffer.concat(body).toString()) as { assets: Array<{ id: string }> }
        return json(res, 200, { results: assets.map(asset => ({ id: asset.id, action: 'accept' })) })
      }
      if (path === '/api/assets' && req.method === 'POST') {
        s.uploads.push(Buffer.concat(body).length)
        return json(res, 201, { id: `asset-${s.uploads.length}`, status: 'created' })
      }
      json(res, 200, { ok: true, path })
    })
  }
  return { state: s, handler }
}
