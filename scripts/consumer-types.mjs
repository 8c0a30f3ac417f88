#!/usr/bin/env node
// The user's view of the published types: pack the package, install the tarball into a fresh
// strict app (module nodenext, skipLibCheck false) with the README's install line, and
// type-check every ```ts block of README.md plus the type tests in test/consumer/ on each
// supported TypeScript version. `@ts-expect-error` lines in the type tests must stay errors
// (tsc reports an unused directive otherwise).
//
//   npm run test:consumer                       every supported version
//   npm run test:consumer -- --ts 6.0.3         one version
//   npm run test:consumer -- --dir /tmp/app     reuse (or keep) the app directory
//
// Prints one `consumer types: TypeScript <v>: ok|failed` line per version and, last,
// `consumer types: N passed, N failed`; writes the same counts to .consumer-types.json for
// .ci/run. Exits non-zero when any version failed.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The supported TypeScript versions: the floor the README states, the current 6.x and 7.x. */
export const SUPPORTED_TS = ['5.6.3', '6.0.3', '7.0.2']

const root = resolve(fileURLToPath(import.meta.url), '../..')
const args = parseArgs(process.argv.slice(2))
const versions = args.ts ?? SUPPORTED_TS
const appDir = args.dir ? resolve(args.dir) : mkdtempSync(join(tmpdir(), 'wsx-consumer-'))
const keep = Boolean(args.dir)
/** tsc output lines shown per failing program */
const MAX_LINES = 40

function parseArgs (argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ts') out.ts = argv[++i].split(',')
    else if (argv[i] === '--dir') out.dir = argv[++i]
    else if (argv[i] === '--skip-pack') out.skipPack = true
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  return out
}

function run (cmd, cmdArgs, cwd) {
  return execFileSync(cmd, cmdArgs, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 })
}

/**
 * The packages of the README's Install section (every `npm install` line of its first code
 * block, comments dropped), with the tarball in place of fastify-wsx.
 */
function readmeInstallPackages (readme, tarball) {
  const section = readme.slice(readme.indexOf('\n## Install'))
  const block = /```[^\n]*\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  const packages = block.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l.startsWith('npm install '))
    .flatMap((l) => l.split(/\s+/).slice(2)).filter((p) => !p.startsWith('-'))
  if (!packages.includes('fastify-wsx')) throw new Error('README.md: the Install section has no `npm install fastify-wsx ...` line')
  return packages.map((p) => p === 'fastify-wsx' ? tarball : p)
}

/** Every ```ts block of the README with the line its code starts on (1-based). */
export function extractTsBlocks (readme) {
  const lines = readme.split('\n')
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```ts') continue
    const start = i + 2
    const body = []
    for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i])
    blocks.push({ index: blocks.length + 1, line: start, code: body.join('\n') })
  }
  return blocks
}

/**
 * Blocks that augment fastify-wsx's registry or the globals get a program of their own (two
 * registries would collide); augmenting 'fastify' with decorators stays in the shared one.
 */
function isolated (block) {
  return /^\s*declare\s+(module\s+['"]fastify-wsx['"]|global)/m.test(block.code)
}

function setUpApp (tarball, readme) {
  mkdirSync(appDir, { recursive: true })
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'wsx-consumer', private: true, type: 'module' }, null, 2))
  const packages = readmeInstallPackages(readme, tarball)
  // what README blocks and the type tests import beyond the install line: prom-client for
  // fastify-wsx/metrics (an optional peer, as the README says), ws for the Node client,
  // typebox 1.x (the package @fastify/type-provider-typebox 6 uses)
  const extras = ['prom-client', 'ws', 'typebox@^1']
  console.log(`consumer types: npm install ${[...packages.map((p) => p === tarball ? basename(p) : p), ...extras].join(' ')} (in ${appDir})`)
  run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', ...packages, ...extras], appDir)
  writeFileSync(join(appDir, 'tsconfig.base.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      verbatimModuleSyntax: true
    }
  }, null, 2))
}

function installTypeScript (version) {
  const dir = join(appDir, '.ts', version)
  if (existsSync(join(dir, 'node_modules', 'typescript', 'package.json'))) return dir
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true }))
  run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', `typescript@${version}`], dir)
  return dir
}

/** Writes the README blocks and type tests into programs: one shared, one per augmenting block. */
function writePrograms (blocks) {
  const src = join(appDir, 'src')
  rmSync(src, { recursive: true, force: true })
  mkdirSync(src, { recursive: true })
  const origin = new Map()
  const programs = [{ name: 'shared', files: [] }]
  for (const block of blocks) {
    const file = `readme-block-${String(block.index).padStart(2, '0')}.ts`
    // `export {}` makes a block without imports a module, so blocks never share globals
    writeFileSync(join(src, file), `${block.code}\nexport {}\n`)
    origin.set(file, block)
    if (isolated(block)) programs.push({ name: `README block ${block.index}`, files: [file] })
    else programs[0].files.push(file)
  }
  const testsDir = join(root, 'test', 'consumer')
  for (const name of readdirSync(testsDir).filter((f) => f.endsWith('.ts')).sort()) {
    const code = readFileSync(join(testsDir, name), 'utf8')
    writeFileSync(join(src, name), code)
    if (isolated({ code })) programs.push({ name: `test/consumer/${name}`, files: [name] })
    else programs[0].files.push(name)
  }
  for (const program of programs) {
    program.config = `tsconfig.${program.name.replace(/\W+/g, '-')}.json`
    writeFileSync(join(appDir, program.config), JSON.stringify({ extends: './tsconfig.base.json', files: program.files.map((f) => `src/${f}`) }, null, 2))
  }
  return { programs, origin }
}

/** tsc's `src/file.ts(l,c): error` lines, pointed back at README.md or test/consumer/. */
function explain (output, origin) {
  const lines = output.split('\n').filter(Boolean)
  const shown = lines.slice(0, MAX_LINES).map((line) => {
    const m = /^src\/([^()]+)\((\d+),(\d+)\): (.*)$/.exec(line)
    if (!m) return `    ${line}`
    const [, file, l, c, message] = m
    const block = origin.get(file)
    if (block) {
      const codeLine = block.code.split('\n')[Number(l) - 1] ?? ''
      return `    README.md:${block.line + Number(l) - 1}:${c} (ts block ${block.index}, line ${l} of the block): ${message}\n      | ${codeLine.trim()}`
    }
    return `    test/consumer/${file}:${l}:${c}: ${message}`
  })
  if (lines.length > MAX_LINES) shown.push(`    ... and ${lines.length - MAX_LINES} more lines`)
  return shown.join('\n')
}

function main () {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  let tarball
  if (!args.skipPack || !existsSync(join(appDir, 'node_modules', 'fastify-wsx'))) {
    const packDir = join(appDir, '.pack')
    mkdirSync(packDir, { recursive: true })
    const out = run('npm', ['pack', '--silent', '--pack-destination', packDir], root).trim().split('\n').pop()
    tarball = join(packDir, out)
    setUpApp(tarball, readme)
  }
  const blocks = extractTsBlocks(readme)
  const { programs, origin } = writePrograms(blocks)
  console.log(`consumer types: ${blocks.length} README ts blocks, ${readdirSync(join(root, 'test', 'consumer')).length} type test files, ${programs.length} programs`)
  let passed = 0
  let failed = 0
  for (const version of versions) {
    const tsDir = installTypeScript(version)
    const tsc = join(tsDir, 'node_modules', 'typescript', 'bin', 'tsc')
    const problems = []
    for (const program of programs) {
      const res = spawnSync(process.execPath, [tsc, '-p', program.config], { cwd: appDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      if (res.status !== 0) problems.push(`  ${program.name} (${program.config}):\n${explain(res.stdout + res.stderr, origin)}`)
    }
    if (problems.length === 0) {
      passed++
      console.log(`consumer types: TypeScript ${version}: ok`)
    } else {
      failed++
      console.log(`consumer types: TypeScript ${version}: failed\n${problems.join('\n')}`)
    }
  }
  console.log(`consumer types: ${passed} passed, ${failed} failed`)
  writeFileSync(join(root, '.consumer-types.json'), JSON.stringify({ passed, failed }))
  if (!keep) rmSync(appDir, { recursive: true, force: true })
  process.exitCode = failed === 0 ? 0 : 1
}

try {
  main()
} catch (err) {
  console.log(`consumer types: could not run: ${err.stderr ?? ''}${err.message}`)
  console.log(`consumer types: 0 passed, ${versions.length} failed`)
  writeFileSync(join(root, '.consumer-types.json'), JSON.stringify({ passed: 0, failed: versions.length }))
  if (!keep) rmSync(appDir, { recursive: true, force: true })
  process.exitCode = 1
}
