#!/usr/bin/env node
// `npm run build`, after tsc: copies the files tsc does not emit (the playground page and
// its script) to the same place under dist/, where the built plugins read them at boot.
// .ci/pack-check.mjs fails a package that lacks any of them.
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** Every runtime asset, relative to the repository root. */
export const ASSETS = ['plugins/playground/page.html', 'plugins/playground/page.js']

// run as a script (not when .ci/pack-check.mjs imports the list)
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..')
  for (const file of ASSETS) {
    const target = join(root, 'dist', file)
    mkdirSync(dirname(target), { recursive: true })
    copyFileSync(join(root, file), target)
  }
  console.log(`copy-assets: ${ASSETS.length} files into dist/`)
}
