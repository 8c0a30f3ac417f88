// Checks what `npm pack` would publish: the build, the docs, LICENSE and README, and
// nothing else (no tests, benchmarks, examples, CI scripts or TypeScript sources), and
// that the built code never imports a package the app may not have (@fastify/jwt).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts=false'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
// prepack's build may print before the JSON array
const [pack] = JSON.parse(out.slice(out.indexOf('\n[') + 1 || out.indexOf('[')))
const files = pack.files.map((f) => f.path).sort()
const problems = []

const required = ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/lib/testing.js',
  'dist/client/index.js', 'dist/plugins/metrics.js']
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
