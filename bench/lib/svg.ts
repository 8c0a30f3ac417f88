// A small SVG line-chart writer for the bench's plots: panels of series over a shared
// layout, log or linear x axis, no dependencies. The output is plain SVG 1.1 text.

export interface Series {
  name: string
  points: Array<[number, number]>
}

export interface Panel {
  title: string
  xLabel: string
  yLabel: string
  series: Series[]
  logX?: boolean
}

const W = 360
const H = 240
const M = { left: 56, right: 12, top: 28, bottom: 40 }
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e']

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** 1, 2, 5 × 10^k steps: about `count` ticks over [lo, hi]. */
function niceTicks (lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag
  const ticks: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

function label (v: number): string {
  if (Math.abs(v) >= 1000) return `${Number((v / 1000).toPrecision(3))}k`
  return String(Number(v.toPrecision(3)))
}

function panel (p: Panel, ox: number, oy: number): string {
  const pts = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  const out: string[] = [`<g transform="translate(${ox},${oy})">`, `<text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`]
  if (pts.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">not measured</text>`, '</g>')
    return out.join('')
  }
  const fx = (x: number): number => p.logX === true ? Math.log10(x) : x
  const xs = pts.map(([x]) => fx(x))
  const ys = pts.map(([, y]) => y)
  const x0 = Math.min(...xs)
  const x1 = Math.max(...xs) > x0 ? Math.max(...xs) : x0 + 1
  const y0 = Math.min(0, ...ys)
  const y1 = Math.max(...ys) > y0 ? Math.max(...ys) * 1.1 : y0 + 1
  const px = (x: number): number => M.left + (fx(x) - x0) / (x1 - x0) * (W - M.left - M.right)
  const py = (y: number): number => H - M.bottom - (y - y0) / (y1 - y0) * (H - M.top - M.bottom)
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#999"/>`)
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${M.left - 4}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${label(t)}</text>`)
  }
  const xticks = [...new Set(pts.map(([x]) => x))].sort((a, b) => a - b)
  for (const t of xticks) out.push(`<text x="${px(t).toFixed(1)}" y="${H - M.bottom + 14}" text-anchor="middle">${label(t)}</text>`)
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 6}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    `<text transform="translate(14,${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`)
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!
    const line = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`)
    if (line.length > 1) out.push(`<polyline points="${line.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`)
    for (const xy of line) {
      const [cx, cy] = xy.split(',')
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`)
    }
    out.push(`<rect x="${M.left + 8}" y="${M.top + 6 + i * 14}" width="10" height="3" fill="${color}"/>`,
      `<text x="${M.left + 22}" y="${M.top + 11 + i * 14}">${esc(s.name)}</text>`)
  })
  out.push('</g>')
  return out.join('')
}

/** Panels in a grid of `columns`, with a title and a note line under it. */
export function renderSvg (title: string, note: string, panels: Panel[], columns = 3): string {
  const rows = Math.ceil(panels.length / columns)
  const width = columns * W
  const height = rows * H + 44
  const body = panels.map((p, i) => panel(p, (i % columns) * W, 44 + Math.floor(i / columns) * H)).join('\n')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="36">${esc(note)}</text>`,
    body,
    '</svg>',
    ''
  ].join('\n')
}
