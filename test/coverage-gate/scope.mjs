// What coverage is measured on: every production TypeScript file, and nothing else (not the
// tests, fixtures, examples, bench, or types/, which holds types only). tap's `coverage-map`
// (.taprc) calls the default export for each test file; the files it returns are the only
// ones whose coverage a test process, or a child it starts, records.
// test/coverage-gate/gate.mjs adds those that no process loaded, at 0 %.
import { readdirSync } from 'node:fs'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** index.ts, then every .ts file under these folders */
export const productionRoots = ['index.ts', 'protocol', 'lib', 'plugins', 'testing', 'client']

/** The production files, as paths relative to the project root, sorted. */
export function productionFiles () {
  const files = []
  const walk = (path) => {
    for (const entry of readdirSync(join(root, path), { withFileTypes: true })) {
      const child = join(path, entry.name)
      if (entry.isDirectory()) walk(child)
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(child)
    }
  }
  for (const path of productionRoots) {
    if (path.endsWith('.ts')) files.push(path)
    else walk(path)
  }
  return files.map((f) => f.split(sep).join('/')).sort()
}

export default function coverageMap () {
  return productionFiles()
}
