// Where credentials travel. At the upgrade: which parts of a request are explicit
// credentials (a failure then answers 401) and which are ambient (cookies a browser sends
// by itself: a failure falls back to the in-band handshake). In-band: how the fields of
// `socket.authorize` become the headers an HTTP request would have carried, so a strategy
// written for HTTP runs unchanged (docs/protocol.md#credentials-in-socketauthorize).
import type { IncomingHttpHeaders } from 'node:http'

/** The route's credential settings, compiled. */
export interface CredentialSettings {
  /** the header an `api_key` travels in (lower case), or null */
  apiKeyHeader: string | null
  /** the cookie a `session_id` travels in, or null */
  sessionCookie: string | null
}

export const defaultCredentials: CredentialSettings = { apiKeyHeader: 'x-api-key', sessionCookie: 'sessionId' }

const MAX_CREDENTIAL_LENGTH = 16 * 1024
// header values: visible ASCII and spaces, no CR/LF (no header injection)
const HEADER_SAFE = /^[\x20-\x7e]+$/
// RFC 6265 cookie-octet
const COOKIE_SAFE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/

/** Upgrade headers that describe the WebSocket handshake itself, not the client. */
const notCarried = new Set(['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions',
  'sec-websocket-protocol', 'content-length', 'transfer-encoding', 'authorization', 'proxy-authorization'])

/**
 * True when the upgrade presents a credential on purpose: `Authorization` (or
 * `Proxy-Authorization`, which @fastify/basic-auth's proxy mode reads) or the API-key header.
 */
export function hasExplicitCredential (headers: IncomingHttpHeaders, settings: CredentialSettings): boolean {
  for (const name of ['authorization', 'proxy-authorization'] as const) {
    const value = headers[name]
    if (typeof value === 'string' && value.length > 0) return true
  }
  if (settings.apiKeyHeader !== null && headers[settings.apiKeyHeader] !== undefined) return true
  return false
}

function credentialString (value: unknown, pattern = HEADER_SAFE): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_CREDENTIAL_LENGTH) return null
  return pattern.test(value) ? value : null
}

/** The upgrade's cookies with `name` set to `value` (replacing any cookie of that name). */
function withCookie (header: string | undefined, name: string, value: string): string {
  const kept = (header ?? '').split(';').map((c) => c.trim()).filter((c) => c.length > 0 && c.slice(0, c.indexOf('=')).trim() !== name)
  return [...kept, `${name}=${value}`].join('; ')
}

/**
 * The headers of the HTTP request equivalent to a `socket.authorize` frame: the upgrade's
 * own headers (its cookies, a tenant header...) without its Authorization, plus
 * - `token` → `Authorization: Bearer <token>`
 * - `username` + `password` → `Authorization: Basic <base64>`
 * - `api_key` → the route's API-key header
 * - `session_id` → the route's session cookie, added to the upgrade's cookies.
 * Null when the frame carries no usable credential (a failed attempt).
 */
export function inbandHeaders (upgrade: IncomingHttpHeaders, data: Record<string, unknown>, settings: CredentialSettings): IncomingHttpHeaders | null {
  const headers: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(upgrade)) if (!notCarried.has(name)) headers[name] = value
  let presented = false

  const token = credentialString(data.token)
  if (token !== null) {
    headers.authorization = `Bearer ${token}`
    presented = true
  } else if (typeof data.username === 'string' && typeof data.password === 'string') {
    const username = data.username
    if (username.includes(':') || username.length + data.password.length > MAX_CREDENTIAL_LENGTH) return null
    headers.authorization = `Basic ${Buffer.from(`${username}:${data.password}`, 'utf8').toString('base64')}`
    presented = true
  }
  if (settings.apiKeyHeader !== null) {
    delete headers[settings.apiKeyHeader]
    const key = credentialString(data.api_key)
    if (key !== null) {
      headers[settings.apiKeyHeader] = key
      presented = true
    }
  }
  if (settings.sessionCookie !== null) {
    const id = credentialString(data.session_id, COOKIE_SAFE)
    if (id !== null) {
      headers.cookie = withCookie(headers.cookie, settings.sessionCookie, id)
      presented = true
    }
  }
  return presented ? headers : null
}

/** `url` without the query parameter `param` (a query token never travels further). */
export function withoutQueryParam (url: string, param: string | null): string {
  if (param === null) return url
  const q = url.indexOf('?')
  if (q < 0) return url
  const kept = url.slice(q + 1).split('&').filter((pair) => pair.split('=', 1)[0] !== param)
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`
}
