// The AsyncAPI document: valid for the official parser, and describing the demo's routes.
import t from 'tap'
import { Parser } from '@asyncapi/parser'
import { buildDemo } from '../examples/chat/app.js'
import { toAddress, toYaml } from '../lib/boot/asyncapi.js'
import { toPlainSchema } from '../lib/boot/describe.js'
import { wsxAsyncApi } from '../plugins/asyncapi.js'
import { playgroundPage, wsxPlayground } from '../plugins/playground.js'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Type } from '../index.js'
import { build, verifyJwt } from './helpers/build.js'

type Doc = Record<string, any>

async function demo (t: { teardown: (fn: () => unknown) => void }) {
  const app = await buildDemo({}, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Diagnostics of error severity (0) from the official parser. */
async function parserErrors (input: Doc | string) {
  const diagnostics = await new Parser().validate(input as never)
  return diagnostics.filter((d) => d.severity === 0).map((d) => `${d.code}: ${d.message} at ${d.path.join('/')}`)
}

t.test('the demo document validates with @asyncapi/parser, as JSON and as YAML', async (t) => {
  const app = await demo(t)
  const res = await app.inject('/wsx/asyncapi.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /application\/json/)
  const doc = res.json() as Doc
  t.equal(doc.asyncapi, '3.0.0')
  t.same(await parserErrors(doc), [])
  const yaml = await app.inject('/wsx/asyncapi.yaml')
  t.match(yaml.headers['content-type'], /yaml/)
  t.same(await parserErrors(yaml.body), [])
  // the parser reads the YAML back into the same document
  const parsed = await new Parser().parse(yaml.body)
  t.equal(parsed.document?.channels().length, Object.keys(doc.channels).length)
})

t.test('it describes the demo: chat route and params, chat.send, public.ping, room channel, bench', async (t) => {
  const app = await demo(t)
  const doc = app.wsxAsyncApi() as Doc
  const chat = doc.channels.ws_chat_room
  t.equal(chat.address, '/ws/chat/{room}')
  t.match(chat.parameters.room.description, '^[a-z0-9-]{1,32}$')
  t.same(chat['x-wsx-auth'].public_actions, ['public.ping'])

  const send = doc.operations['ws_chat_room.chat.send']
  t.equal(send.action, 'send')
  t.equal(send['x-wsx-public'], false)
  t.same(send.security, [{ $ref: '#/components/securitySchemes/httpBearerToken' }])
  t.match(send['x-wsx-throttle'], [{ bucket: 'chat.send', max: 5, window_ms: 10_000, key: 'user' }])
  t.same(send.messages, [{ $ref: '#/channels/ws_chat_room/messages/chat.send.request' }])
  t.same(send.reply.messages.map((m: Doc) => m.$ref), ['#/channels/ws_chat_room/messages/chat.send.reply', '#/channels/ws_chat_room/messages/error'])

  const request = chat.messages['chat.send.request'].payload
  t.same(request.properties.action, { type: 'string', const: 'chat.send' })
  t.same(request.properties.data, { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 1, maxLength: 4000 } } })
  t.same(chat.messages['chat.send.reply'].payload.properties.data.required, ['user', 'text'])
  t.same(chat.messages.error.payload.properties.error.properties.code.enum.includes('throttled'), true)

  const ping = doc.operations['ws_chat_room.public.ping']
  t.equal(ping['x-wsx-public'], true)
  t.notOk(ping.security, 'public actions carry no security requirement')
  t.equal(doc.operations['ws_chat_room.admin.stats']['x-wsx-public'], false)

  // server events: the route's and the room channel's (with channel + params)
  t.equal(doc.operations['ws_chat_room.event.chat.message'].action, 'receive')
  const channelEvent = chat.messages['channel.room.chat.message'].payload
  t.same(channelEvent.properties.channel, { type: 'string', const: 'room' })
  t.equal(channelEvent.properties.params.properties.room.pattern, '^[a-z0-9-]{1,32}$')
  t.match(chat['x-wsx-channels'], [{ name: 'room', events: ['chat.message'] }])
  t.ok(chat.messages['channel.subscribe.request'])
  t.equal(chat.messages['socket.handshake'].payload.properties.data.properties.attempts.const, 2)

  const bench = doc.channels.ws_bench
  t.equal(bench.address, '/ws/bench')
  t.same(bench['x-wsx-auth'], { upgrade: true, handshake: false, public_actions: [] })
  t.match(doc.operations['ws_bench.bench.echo']['x-wsx-throttle'], [{ max: 1_000_000, window_ms: 60_000 }])
  t.notOk(bench.messages['socket.handshake'], 'no handshake frames on an upgrade-only route')
  t.equal(doc.operations['ws_bench.event.bench.tick'].action, 'receive')

  t.equal(doc['x-wsx-close-codes']['4408'], 'locked out: authorize attempts exhausted')
  t.equal(doc['x-wsx-error-codes'].throttled, 'Request was throttled.')
  t.same(doc.components.securitySchemes.httpBearerToken.scheme, 'bearer')
})

t.test('the output is plain JSON: no symbol keys, round-trips unchanged', async (t) => {
  const app = await demo(t)
  const doc = app.wsxAsyncApi()
  t.same(JSON.parse(JSON.stringify(doc)), doc)
  const walk = (v: unknown): number => {
    if (v === null || typeof v !== 'object') return 0
    return Object.getOwnPropertySymbols(v).length + Object.values(v).reduce((n: number, x) => n + walk(x), 0)
  }
  t.equal(walk(doc), 0)
  const schema = Type.Object({ a: Type.Optional(Type.String()) })
  t.ok(Object.getOwnPropertySymbols(schema).length > 0, 'TypeBox does carry symbols')
  t.equal(Object.getOwnPropertySymbols(toPlainSchema(schema)).length, 0)
})

t.test('routes declared after the plugin, in a prefixed scope, are included; keys stay unique', async (t) => {
  const app = await build(t)
  await app.register(wsxAsyncApi, { info: { title: 'Test', version: '9.9.9' }, servers: { local: { host: 'localhost:3000', protocol: 'ws' } } })
  app.register(async (scope) => {
    scope.wsx.route({ url: '/ws/:a/:b', authenticate: [verifyJwt], actions: { 'x.y': { handler: async () => ({}) } } })
  }, { prefix: '/v1' })
  app.wsx.route({ url: '/v1-ws/a/b', actions: { 'x.y': { public: true, handler: async () => ({}) } } })
  await app.ready()
  const doc = (await app.inject('/wsx/asyncapi.json')).json() as Doc
  // both urls slug to v1_ws_a_b: the second declared gets a suffix
  t.same(Object.keys(doc.channels).sort(), ['v1_ws_a_b', 'v1_ws_a_b_2'])
  const scoped = Object.values(doc.channels as Record<string, Doc>).find((c) => c.address === '/v1/ws/{a}/{b}')
  t.same(Object.keys(scoped?.parameters ?? {}), ['a', 'b'])
  const flat = Object.values(doc.channels as Record<string, Doc>).find((c) => c.address === '/v1-ws/a/b')
  t.ok(flat)
  t.notOk(flat?.parameters, 'no parameters on a static url')
  t.same(doc.info, { title: 'Test', version: '9.9.9', description: doc.info.description })
  t.equal(doc.servers.local.protocol, 'ws')
  t.same(await parserErrors(doc), [])
  t.equal(toAddress('/x/:id/y'), '/x/{id}/y')
})

t.test('toYaml renders nested objects, arrays and empty values', async (t) => {
  const yaml = toYaml({ a: { b: [1, 'x', { c: true }], d: [] }, e: {}, f: null })
  t.equal(yaml, '\n"a":\n  "b":\n    - 1\n    - "x"\n    - "c": true\n  "d": []\n"e": {}\n"f": null')
})

t.test('playground: routes.json comes from the route table; the page is self-contained', async (t) => {
  const app = await demo(t)
  const { routes } = (await app.inject('/wsx/playground/routes.json')).json() as Doc
  const chat = routes.find((r: Doc) => r.url === '/ws/chat/:room')
  t.same(chat.params, [{ name: 'room', schema: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' } }])
  t.same(chat.auth, { upgrade: true, handshake: true })
  t.match(chat.actions.find((a: Doc) => a.name === 'chat.send'), { public: false, summary: 'Send a message to the room', request: { required: ['text'] } })
  t.match(chat.actions.find((a: Doc) => a.name === 'public.ping'), { public: true, request: null })
  t.ok(chat.actions.find((a: Doc) => a.name === 'channel.subscribe'), 'built-ins the route answers are listed')
  t.match(chat.channels, [{ name: 'room', events: ['chat.message'] }])
  t.same(routes.map((r: Doc) => r.url), ['/ws/chat/:room', '/ws/bench'])

  const page = await app.inject('/wsx/playground')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  t.match(page.body, 'data-routes="/wsx/playground/routes.json"')
  t.notMatch(page.body, /<script[^>]+src=|<link[^>]+href=|https?:\/\//, 'no external script, stylesheet or URL')
})

t.test('playground: the page is page.html with page.js inline, both read from their files', async (t) => {
  const html = readFileSync(new URL('../plugins/playground/page.html', import.meta.url), 'utf8')
  const script = readFileSync(new URL('../plugins/playground/page.js', import.meta.url), 'utf8')
  const page = playgroundPage('/dev/"x"/routes.json')
  t.ok(page.includes(`<script>\n${script}</script>`), 'the script, verbatim ($ signs included)')
  t.ok(page.includes('data-routes="/dev/&quot;x&quot;/routes.json"'), 'the route list URL, escaped')
  t.equal(page.replace(/<script>\n[\s\S]*<\/script>/, '<script src="page.js"></script>').replace(/data-routes="[^"]*"/, 'data-routes="routes.json"'), html,
    'nothing else changes')
})

t.test('playground: a missing or damaged page file fails the registration with WSX_ERR_ASSET_INVALID', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wsx-page-'))
  const url = pathToFileURL(dir + '/')
  t.throws(() => playgroundPage('/r', url), { code: 'WSX_ERR_ASSET_INVALID', message: /playground\/page.html is missing or damaged/ })
  writeFileSync(join(dir, 'page.html'), '<body data-routes="routes.json"></body>')
  writeFileSync(join(dir, 'page.js'), '')
  t.throws(() => playgroundPage('/r', url), { code: 'WSX_ERR_ASSET_INVALID', message: /page.html .*must hold/ })
  writeFileSync(join(dir, 'page.html'), '<body data-routes="routes.json"><script src="page.js"></script></body>')
  writeFileSync(join(dir, 'page.js'), 'const s = "</script>"')
  t.throws(() => playgroundPage('/r', url), { code: 'WSX_ERR_ASSET_INVALID', message: /page.js .*<\/script/ })
  writeFileSync(join(dir, 'page.js'), 'go()')
  t.equal(playgroundPage('/r', url), '<body data-routes="/r"><script>\ngo()</script></body>')
})

t.test('playground refuses to register under NODE_ENV=production unless enableInProduction', async (t) => {
  const previous = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => { if (previous === undefined) delete process.env.NODE_ENV; else process.env.NODE_ENV = previous })
  const refused = await build(t)
  refused.register(wsxPlayground)
  await t.rejects(async () => { await refused.ready() }, { code: 'WSX_ERR_PLAYGROUND_IN_PRODUCTION' })
  const allowed = await build(t)
  await allowed.register(wsxPlayground, { enableInProduction: true, path: '/dev/pg/' })
  t.equal((await allowed.inject('/dev/pg')).statusCode, 200)
  t.same((await allowed.inject('/dev/pg/routes.json')).json(), { routes: [] })
})
