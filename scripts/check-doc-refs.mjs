#!/usr/bin/env node
// Checks that every reference to a document resolves to something in this repository.
// Part of `npm run lint`. Plain Node, no dependency.
//
//   node scripts/check-doc-refs.mjs            strict: lists the broken references, exits 1 if any
//   node scripts/check-doc-refs.mjs --report   lists them and exits 0
//
// It reads the project's own text files (`git ls-files`, tracked or new but not ignored,
// ending in .ts .mjs .js .md .sh; never node_modules/, dist/ or vendored code) and reports
// `file:line: reason` for:
//
// 1. A document that is not in the repository: an upper-case `NAME.md` that no file of
//    the repository is called, and the names and section marks of documents that were never
//    part of it (the list is FOREIGN below).
// 2. A reference to a file under docs/ that does not exist, or to one of its sections that
//    it does not have.
// 3. A reference to a README section that README.md does not have.
// 4. In Markdown files: a relative link `[text](path#anchor)` or `[text](#anchor)` whose
//    file does not exist or whose anchor matches no heading of that file.
//
// How to cite the docs (in code comments and prose), paths from the repository root:
//
//   docs/protocol.md                       the whole document
//   docs/protocol.md#close-codes           one section, by the anchor GitHub gives its heading
//   docs/protocol.md "Close codes"         the same, by the heading's text in double quotes
//   docs/protocol.md §Close codes          the same; the words after § must start with a heading
//   README.md#the-protocol                 a README section, by anchor
//   README "The protocol"  (README, The protocol)  (README: The protocol)
//                                          a README section by its title (which starts
//                                          with a capital letter)
//
// Prefer the `#anchor` forms in new comments: they are what GitHub links to. Markdown
// links in .md files are ordinary relative links (`[errors](errors.md#close-codes)`).
//
// Anchors follow GitHub's rules: the heading's text in lower case, punctuation other than
// `-` and `_` dropped, spaces turned into `-`; a repeated heading gets `-1`, `-2`, ...
// Headings inside fenced code blocks do not count; `<a id="...">` adds an anchor.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const self = relative(root, fileURLToPath(import.meta.url)).split(sep).join('/')
const reportOnly = process.argv.includes('--report')

/** Documents and marks that never were part of this repository: a reader cannot follow them. */
const FOREIGN = [
  { pattern: /\bPROTOCOL(?: ?§|\.md\b)/, what: 'a protocol document outside the repository: cite docs/protocol.md' },
  { pattern: /\bSTACK(?: ?§|\.md\b)/, what: 'a stack document outside the repository: cite the README or docs/' },
  { pattern: /\bPITFALLS\b/, what: 'a pitfalls list outside the repository: say the point in place, or cite docs/' },
  { pattern: /\bARCHITECTURE\.md\b/, what: 'an architecture document outside the repository: cite docs/ or the README' },
  { pattern: /\bDEMO\.md\b/, what: 'a demo contract outside the repository: cite the README (examples/chat is the demo)' },
  { pattern: /(?:\.\.\/)+shared\b/, what: 'a path outside the repository' },
  { pattern: /\b[Ss]eeds? 0\d*\b/, what: 'a seed document outside the repository' },
  { pattern: /\bseeds\//, what: 'a seed folder outside the repository' }
]

const EXTENSIONS = /\.(?:ts|mjs|js|md|sh)$/
const SKIPPED = /^(?:node_modules|dist|coverage|\.tap)\/|\/vendor\//

/**
 * Every file of the repository: tracked, or new and not ignored (deleted ones left out).
 * Outside a git checkout, every file under the root but dependencies and build output.
 */
function repositoryFiles () {
  let listed
  try {
    listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\0')
  } catch {
    listed = readdirSync(root, { recursive: true }).map((f) => String(f).split(sep).join('/'))
      .filter((f) => !/^(?:\.git|node_modules|dist|coverage|\.tap)(?:\/|$)/.test(f))
  }
  return [...new Set(listed)].filter((f) => f && isFile(f)).sort()
}

// ---------------------------------------------------------------- headings and anchors

/** The anchor GitHub gives a heading. */
function slug (text) {
  return text
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-')
}

const headingCache = new Map()

/** The anchors of a Markdown file (deduplicated as GitHub does) and its headings' base slugs. */
function headingsOf (file) {
  let entry = headingCache.get(file)
  if (entry) return entry
  const anchors = new Set()
  const bases = new Set()
  const seen = new Map()
  let fence = null
  for (const line of readFileSync(join(root, file), 'utf8').split('\n')) {
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line)
    if (f) {
      if (fence === null) fence = f[1][0]
      else if (f[1][0] === fence) fence = null
      continue
    }
    if (fence !== null) continue
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1])
    const h = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)
    if (!h) continue
    const base = slug(h[1])
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
    bases.add(base)
  }
  entry = { anchors, bases }
  headingCache.set(file, entry)
  return entry
}

/** Whether the words at the start of `text` are a heading of `file` (the longest match wins). */
function startsWithHeading (file, text) {
  const words = text.trim().split(/\s+/)
  const { bases } = headingsOf(file)
  for (let n = Math.min(words.length, 12); n > 0; n--) {
    if (bases.has(slug(words.slice(0, n).join(' ')))) return true
  }
  return false
}

// ---------------------------------------------------------------- the checks

const problems = []

function report (file, line, reason) {
  problems.push(`${file}:${line}: ${reason}`)
}

function isFile (path) {
  try {
    return statSync(join(root, path)).isFile()
  } catch {
    return false
  }
}

function isPath (path) {
  return existsSync(join(root, path))
}

/** Every file name of the repository, for the `NAME.md` check. */
let basenames = null

function checkDocument (file, n, doc, anchor, quoted, words, raw) {
  if (!isFile(doc)) {
    report(file, n, `${raw}: there is no ${doc}`)
    return
  }
  if (anchor !== undefined && !headingsOf(doc).anchors.has(anchor)) {
    report(file, n, `${raw}: ${doc} has no heading with the anchor #${anchor}`)
  }
  if (quoted !== undefined && !headingsOf(doc).bases.has(slug(quoted))) {
    report(file, n, `${raw}: ${doc} has no heading "${quoted}"`)
  }
  if (words !== undefined && !startsWithHeading(doc, words)) {
    report(file, n, `${raw}: no heading of ${doc} starts the text after §`)
  }
}

/** Blanks the target of every Markdown link (checked on its own) so the prose rules skip it. */
function checkLinks (file, n, line) {
  return line.replace(/\]\(([^()\s]*)\)/g, (whole, target) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return whole
    const hash = target.indexOf('#')
    const path = hash < 0 ? target : target.slice(0, hash)
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1))
    const resolved = path === '' ? file : normalize(join(dirname(file), path)).split(sep).join('/')
    if (resolved.startsWith('..')) report(file, n, `link ${target}: outside the repository`)
    else if (!isPath(resolved)) report(file, n, `link ${target}: there is no ${resolved}`)
    else if (anchor !== undefined && anchor !== '' && resolved.endsWith('.md') && !headingsOf(resolved).anchors.has(anchor)) {
      report(file, n, `link ${target}: ${resolved} has no heading with the anchor #${anchor}`)
    }
    return '](' + ' '.repeat(target.length) + ')'
  })
}

function checkLine (file, n, text) {
  const foreign = []
  for (const { pattern, what } of FOREIGN) {
    const m = pattern.exec(text)
    if (m) {
      report(file, n, `"${m[0]}": ${what}`)
      foreign.push(m[0])
    }
  }
  for (const m of text.matchAll(/(?<![\w/.-])([A-Z][A-Z0-9_-]*\.md)\b/g)) {
    if (!basenames.has(m[1]) && !foreign.some((f) => f.includes(m[1]))) report(file, n, `"${m[1]}": no file of the repository has this name`)
  }

  // docs/<name>.md, optionally #anchor, "Heading", or §Heading words (up to a `;` or the
  // next reference on the line)
  for (const m of text.matchAll(/(?<![\w-])docs\/([\w.-]+?\.md)(?:#([\w-]+)|,? "([^"]+)"| ?§ ?(.*?)(?=;|$|(?<![\w/.-])(?:docs\/|README)))?/g)) {
    checkDocument(file, n, `docs/${m[1]}`, m[2], m[3], m[4], m[0].trim())
  }

  // README.md#anchor, README "Section", (README, Section), (README: Section), README §Section
  for (const m of text.matchAll(/(?<![\w/.-])README\.md#([\w-]+)/g)) {
    checkDocument(file, n, 'README.md', m[1], undefined, undefined, m[0])
  }
  for (const m of text.matchAll(/(?<![\w/.-])README(?:\.md)?,? "([^"]+)"/g)) {
    checkDocument(file, n, 'README.md', undefined, m[1], undefined, m[0])
  }
  for (const m of text.matchAll(/(?<![\w/.-])README(?:\.md)?([,:]) ([A-Z][^)\n;:]*)/g)) {
    if (!startsWithHeading('README.md', m[2])) report(file, n, `README${m[1]} ${m[2].trim()}: README.md has no such section`)
  }
  for (const m of text.matchAll(/(?<![\w/.-])README(?:\.md)? ?§ ?(.*?)(?=;|$|(?<![\w/.-])(?:docs\/|README))/g)) {
    if (!startsWithHeading('README.md', m[1])) report(file, n, `README §${m[1].trim()}: no heading of README.md starts the text after §`)
  }
}

function main () {
  const all = repositoryFiles()
  basenames = new Set(all.map((f) => f.slice(f.lastIndexOf('/') + 1)))
  const files = all.filter((f) => EXTENSIONS.test(f) && !SKIPPED.test(f))
  // this file names what it looks for
  for (const file of files.filter((f) => f !== self)) {
    const lines = readFileSync(join(root, file), 'utf8').split('\n')
    const markdown = file.endsWith('.md')
    let fence = null
    lines.forEach((line, i) => {
      let text = line
      if (markdown) {
        const f = /^ {0,3}(`{3,}|~{3,})/.exec(line)
        if (f) {
          if (fence === null) fence = f[1][0]
          else if (f[1][0] === fence) fence = null
        } else if (fence === null) {
          text = checkLinks(file, i + 1, line)
        }
      }
      checkLine(file, i + 1, text)
    })
  }
  if (problems.length === 0) {
    console.log(`check-doc-refs: ${files.length} files, every document reference resolves`)
    return
  }
  console.log(problems.join('\n'))
  console.log(`check-doc-refs: ${problems.length} broken reference${problems.length === 1 ? '' : 's'} in ${files.length} files` +
    (reportOnly ? ' (--report: not failing)' : ''))
  if (!reportOnly) process.exitCode = 1
}

main()
