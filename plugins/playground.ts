// The playground: one self-contained page (no CDN, no build step) that lists every wsx
// route and action from the route descriptions, connects with a token and sends actions. A
// development tool: it refuses to register in production unless told otherwise. The page
// is two real files, read once at registration: playground/page.html and its script
// playground/page.js (type-checked and linted; `npm run build` copies both into dist/).
import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import { errors } from '../lib/errors.js'
import type { FastifyInstance } from 'fastify'
import { BuiltinAction } from '../protocol/index.js'
import type { ActionDescription, ChannelDescription, RouteDescription } from '../types/describe.js'

/** Options of the `wsxPlayground` plugin. */
export interface WsxPlaygroundOptions {
  /** where the page is served; the route list is at `<path>/routes.json`. Default `/wsx/playground` */
  path?: string
  /** register even when NODE_ENV is `production` (off: the page lists every action) */
  enableInProduction?: boolean
}

/**
 * One route as the page sees it (page.js reads this type): what it needs to build URLs,
 * forms and skeletons, taken from the route's description with the built-ins it may send.
 */
export interface PlaygroundRoute extends Pick<RouteDescription, 'url' | 'params'> {
  auth: { upgrade: boolean, handshake: boolean }
  actions: Array<Pick<ActionDescription, 'name' | 'public' | 'summary' | 'request'> & { builtin?: true }>
  events: string[]
  channels: Array<Pick<ChannelDescription, 'name' | 'params' | 'summary'> & { events: string[] }>
}

/** The route list the page fetches, built from `app.wsx.describeRoutes()`. */
export function playgroundRoutes (routes: readonly RouteDescription[]): PlaygroundRoute[] {
  return routes.map((route) => {
    const channelNames = route.channels.map((c) => c.name)
    const actions: PlaygroundRoute['actions'] = route.actions.map((a) => ({
      name: a.name,
      public: a.public,
      ...(a.summary && { summary: a.summary }),
      request: a.request
    }))
    actions.push({ name: BuiltinAction.ping, public: true, summary: 'built-in liveness check', request: null, builtin: true })
    if (channelNames.length > 0) {
      const subscribe = {
        type: 'object',
        properties: { channel: { type: 'string', enum: channelNames }, params: { type: 'object' } }
      }
      actions.push({ name: BuiltinAction.subscribe, public: false, summary: 'built-in: subscribe to a channel', request: subscribe, builtin: true })
      actions.push({ name: BuiltinAction.unsubscribe, public: false, summary: 'built-in: unsubscribe', request: subscribe, builtin: true })
    }
    return {
      url: route.url,
      params: route.params,
      auth: { upgrade: route.auth.upgrade, handshake: route.auth.handshake !== null },
      actions,
      events: Object.keys(route.events),
      channels: route.channels.map((c) => ({
        name: c.name,
        params: c.params,
        events: Object.keys(c.events),
        ...(c.summary && { summary: c.summary })
      }))
    }
  })
}

const assetDir = new URL('./playground/', import.meta.url)
/** What page.html holds where the served page has the route list's URL, and the script inline. */
const ROUTES_MARK = 'data-routes="routes.json"'
const SCRIPT_MARK = '<script src="page.js"></script>'

function escapeAttribute (value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
}

function readAsset (dir: URL, name: string): string {
  try {
    return readFileSync(new URL(name, dir), 'utf8')
  } catch (err) {
    throw new errors.WSX_ERR_ASSET_INVALID(`playground/${name}`, err instanceof Error ? err.message : String(err))
  }
}

/**
 * The served page: page.html with page.js inline (one response, so the CSP needs no script
 * origin) and the route list's URL filled in. Throws WSX_ERR_ASSET_INVALID when a file is
 * missing or no longer has what is filled in.
 */
export function playgroundPage (routesUrl: string, dir: URL = assetDir): string {
  const html = readAsset(dir, 'page.html')
  const script = readAsset(dir, 'page.js')
  if (!html.includes(ROUTES_MARK) || !html.includes(SCRIPT_MARK)) {
    throw new errors.WSX_ERR_ASSET_INVALID('playground/page.html', `it must hold ${ROUTES_MARK} and ${SCRIPT_MARK}`)
  }
  // inline, a closing tag in the script would end it early
  if (/<\/script/i.test(script)) throw new errors.WSX_ERR_ASSET_INVALID('playground/page.js', 'it must not contain "</script"')
  // functions as replacements: a `$` in the script is not a replacement pattern
  return html
    .replace(ROUTES_MARK, () => `data-routes="${escapeAttribute(routesUrl)}"`)
    .replace(SCRIPT_MARK, () => `<script>\n${script}</script>`)
}

async function playgroundPlugin (fastify: FastifyInstance, opts: WsxPlaygroundOptions): Promise<void> {
  if (process.env.NODE_ENV === 'production' && opts.enableInProduction !== true) {
    throw new errors.WSX_ERR_PLAYGROUND_IN_PRODUCTION()
  }
  const path = (opts.path ?? '/wsx/playground').replace(/\/+$/, '')
  const html = playgroundPage(`${path}/routes.json`)
  fastify.get(path, async (request, reply) => {
    // inline script and style are the point of a one-file page; everything else stays same-origin
    const host = request.host
    reply.header('content-security-policy',
      `default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws://${host} wss://${host}; base-uri 'none'; form-action 'none'`)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('cache-control', 'no-store')
    return reply.type('text/html; charset=utf-8').send(html)
  })
  // built on each request: cheap, and always matches the routes declared so far
  fastify.get(`${path}/routes.json`, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { routes: playgroundRoutes(fastify.wsx.describeRoutes()) }
  })
}

/**
 * Serves the playground page at `path` (default `/wsx/playground`). Throws
 * WSX_ERR_PLAYGROUND_IN_PRODUCTION under NODE_ENV=production unless `enableInProduction`.
 * @example if (dev) await app.register(wsxPlayground)
 */
export const wsxPlayground = fp(playgroundPlugin, { fastify: '5.x', name: 'fastify-wsx-playground', dependencies: ['fastify-wsx'] })
export default wsxPlayground
