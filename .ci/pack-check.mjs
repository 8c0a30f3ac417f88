// Checks what `npm pack` would publish: the build, the docs, LICENSE and README, and
// nothing else (no tests, benchmarks, examples, CI scripts or TypeScript sources); that the
// built code never imports a package the app may not have (@fastify/jwt); and that the
// tarball installs into an empty app and serves a route there.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ASSETS } from '../scripts/copy-assets.mjs'

const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts=false'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
// prepack's build may print before the JSON array
const [pack] = JSON.parse(out.slice(out.indexOf('\n[') + 1 || out.indexOf('[')))
const files = pack.files.map((f) => f.path).sort()
const problems = []

const required = ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js',
  'dist/client/index.js', 'dist/plugins/metrics.js', 'dist/protocol/index.js',
  // files tsc does not emit (the playground's page), copied by scripts/copy-assets.mjs
  ...ASSETS.map((file) => `dist/${file}`)]
for (const file of required) if (!files.includes(file)) problems.push(`missing: ${file}`)
if (!files.some((f) => /^docs\/.+\.md$/.test(f))) problems.push('missing: docs/*.md')

const forbidden = [/^test\//, /^bench\//, /^examples\//, /^\.ci\//, /^node_modules\//, /^coverage\//, /^\.tap\//, /\.test\./, /(?<!\.d)\.ts$/, /\.tgz$/]
for (const file of files) {
  const rule = forbidden.find((r) => r.test(file))
  if (rule) problems.push(`must not be published: ${file}`)
}

// @fastify/jwt is a dev and optional peer dependency: the published code must not need it
for (const file of files.filter((f) => f.startsWith('dist/') && f.endsWith('.js'))) {
  if (/from ['"]@fastify\/jwt['"]|import\(['"]@fastify\/jwt['"]\)/.test(readFileSync(file, 'utf8'))) problems.push(`${file} imports @fastify/jwt`)
}

console.log(`npm pack --dry-run: ${files.length} files, ${(pack.unpackedSize / 1024).toFixed(0)} KiB unpacked`)
if (problems.length > 0) {
  for (const p of problems) console.log(`  pack check: ${p}`)
  process.exit(1)
}
console.log('pack check: ok (dist, docs, LICENSE, README; no tests, benchmarks, examples or sources)')

// The tarball installed into an empty app that has no JWT: it boots a route, and neither
// @fastify/jwt nor fast-jwt (nor the optional prom-client) came along.
const work = mkdtempSync(join(tmpdir(), 'wsx-consumer-'))
try {
  execFileSync('npm', ['pack', '--ignore-scripts', '--loglevel=error', '--pack-destination', work], { stdio: ['ignore', 'ignore', 'inherit'] })
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))
  const app = join(work, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, tarball)], { cwd: app, stdio: ['ignore', 'ignore', 'inherit'] })
  writeFileSync(join(app, 'boot.mjs'), [
    "import Fastify from 'fastify'",
    "import wsx, { action, wsxPlayground } from 'fastify-wsx'",
    "import { connect } from 'fastify-wsx/testing'",
    'const app = Fastify()',
    'await app.register(wsx)',
    // the playground reads its page from the package's files at registration (whatever NODE_ENV is)
    'await app.register(wsxPlayground, { enableInProduction: true })',
    "app.wsx.route({ url: '/ws', actions: { 'hello.world': action({ public: true, handler: async () => ({ hi: true }) }) } })",
    "const c = await connect(app, '/ws')",
    "const reply = await c.request('hello.world')",
    "if (reply.ok !== true) throw new Error('no reply: ' + JSON.stringify(reply))",
    "const page = await app.inject('/wsx/playground')",
    "if (page.statusCode !== 200 || !page.body.includes('function Panel')) throw new Error('the playground page is not served: ' + page.statusCode)",
    'await c.close()',
    'await app.close()'
  ].join('\n'))
  execFileSync(process.execPath, ['boot.mjs'], { cwd: app, stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 })
  const leaked = ['@fastify/jwt', 'fast-jwt', 'prom-client'].filter((name) => existsSync(join(app, 'node_modules', name)))
  if (leaked.length > 0) {
    console.log(`  consumer check: installing the package pulled ${leaked.join(', ')}`)
    process.exit(1)
  }
  console.log('consumer check: ok (the packed tarball installs and serves a route and the playground; no @fastify/jwt, fast-jwt or prom-client installed)')
} finally {
  rmSync(work, { recursive: true, force: true })
}
