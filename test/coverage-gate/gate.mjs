// The coverage gate, run after the whole suite (`.ci/run`; README, Testing):
//   node test/coverage-gate/gate.mjs
// 1. Every production file that no test process (nor a child it started) loaded is added to
//    tap's coverage data at 0 %, so an untested file lowers the numbers instead of being
//    left out of them. A file that compiles to no JavaScript (types only) has nothing to cover.
// 2. `tap report` computes the four metrics over test/coverage-gate/scope.mjs's files and exits
//    non-zero when one is below its threshold in .taprc (statements, branches, functions,
//    lines). Each metric is printed with its threshold.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import ts from 'typescript'
import { productionFiles } from './scope.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const data = join(root, '.tap', 'coverage')
const UNLOADED = 'unloaded-production-files.json'

/** The files some process recorded coverage for (tap writes one JSON file per process). */
function loadedFiles () {
  const loaded = new Set()
  let entries = []
  try { entries = readdirSync(data) } catch {}
  for (const name of entries) {
    if (name === UNLOADED) continue
    const { result = [] } = JSON.parse(readFileSync(join(data, name), 'utf8'))
    for (const { url } of result) {
      if (url.startsWith('file:')) loaded.add(fileURLToPath(url.replace(/\?.*$/, '')))
    }
  }
  return { loaded, processes: entries.filter((n) => n !== UNLOADED).length }
}

/** True when the file compiles to some JavaScript (not only types and `export {}`). */
function hasRuntimeCode (file) {
  const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: true, removeComments: true }
  })
  return outputText.replace(/export \{\};?/g, '').trim() !== ''
}

/** V8's shape for a script none of whose code ran: one range over the whole file, count 0. */
function unrun (file) {
  return {
    scriptId: '0',
    url: pathToFileURL(file).href,
    functions: [{ functionName: '', isBlockCoverage: true, ranges: [{ startOffset: 0, endOffset: statSync(file).size, count: 0 }] }]
  }
}

/** The thresholds in .taprc (`statements: 80` lines). */
function thresholds () {
  const taprc = readFileSync(join(root, '.taprc'), 'utf8')
  const of = (metric) => Number(new RegExp(`^${metric}:\\s*([\\d.]+)`, 'm').exec(taprc)?.[1] ?? 100)
  return { statements: of('statements'), branches: of('branches'), functions: of('functions'), lines: of('lines') }
}

const { loaded, processes } = loadedFiles()
if (processes === 0) {
  console.log('coverage gate: no coverage data in .tap/coverage (run the whole suite with coverage first)')
  process.exit(1)
}
const files = productionFiles().map((f) => join(root, f))
const unloaded = files.filter((f) => !loaded.has(f) && hasRuntimeCode(f))
writeFileSync(join(data, UNLOADED), JSON.stringify({ result: unloaded.map(unrun) }) + '\n')
console.log(`coverage gate: ${files.length} production files, ${processes} processes recorded coverage; ` +
  (unloaded.length === 0 ? 'every file with code was loaded' : `loaded by none (counted at 0 %): ${unloaded.map((f) => f.slice(root.length)).join(', ')}`))

const report = spawnSync(process.execPath, [resolve(root, 'node_modules/.bin/tap'), 'report', 'text-summary', 'json-summary', '--no-allow-incomplete-coverage'], { cwd: root, encoding: 'utf8' })
// the summary table; not the empty TAP stream `tap report` prints around it, nor its own
// per-metric errors (each metric is printed below with its threshold)
const noise = /^(TAP version|1\.\.0|# \{ total|# time=|# ERROR: incomplete)/
process.stdout.write(report.stdout.split('\n').filter((line) => !noise.test(line)).join('\n'))
process.stderr.write(report.stderr)
const summary = JSON.parse(readFileSync(join(root, '.tap', 'report', 'coverage-summary.json'), 'utf8')).total
const gate = thresholds()
let below = 0
for (const [metric, min] of Object.entries(gate)) {
  const { pct, covered, total } = summary[metric]
  const ok = pct >= min
  if (!ok) below++
  console.log(`coverage gate: ${metric} ${pct}% (${covered}/${total}) ${ok ? '>=' : 'is BELOW'} ${min}%`)
}
const failed = below > 0 || report.status !== 0
console.log(failed ? 'coverage gate: FAILED' : 'coverage gate: passed')
process.exit(failed ? 1 : 0)
