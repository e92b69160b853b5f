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
  const share = one('x-immich-share-key') ?? query.get('key') ?? one('x-immich-share-slug') ?? query.get('slug')
  if (share !== undefined && share !== null && share !== '') return { kind: 'share', value: share }
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
  const s: StandInState = { sessions: new Set(), apiKeys: new Map(), validations: 0, seen: [], uploads: [], ...state }
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
      const auth = credentialOf(req)
      if (path === '/api/auth/validateToken' && req.method === 'POST') {
        s.validations++
        if (s.validateTokenStatus !== undefined) return json(res, s.validateTokenStatus, { message: 'stand-in trouble' })
      }
      const answers = IMMICH_AUTH.validateToken
      if (auth === undefined) return json(res, answers.missing.status, answers.missing.body)
      if (auth.kind === 'share') return json(res, answers.shareCredential.status, answers.shareCredential.body)
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
