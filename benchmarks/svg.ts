// A horizontal bar chart of median ops/s (with min-max whiskers), one panel per workload,
// each panel on its own scale. Written by hand: it is a few rectangles and some text.
import type { WorkloadResult } from './runner.js';
import type { ContestantKind } from './types.js';

const WIDTH = 980;
const LABEL_W = 260;
const BAR_W = 470;
const ROW_H = 22;
const PANEL_GAP = 18;
const TITLE_H = 26;

const COLORS: Record<ContestantKind, string> = {
  redloop: '#c0392b',
  naive: '#e6a19a',
  peer: '#2e6da4',
  floor: '#7f8c8d',
};

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** `subtitle`: one or more lines under the title (the run's date, commit and machine). */
export function renderSvg(results: readonly WorkloadResult[], subtitle: string | readonly string[]): string {
  const parts: string[] = [];
  const subtitles = typeof subtitle === 'string' ? [subtitle] : subtitle;
  let y = 50 + 14 * Math.max(0, subtitles.length - 1);
  for (const w of results) {
    parts.push(`<text x="10" y="${y + 16}" class="title">${esc(w.title)}</text>`);
    let sub = `${w.count.toLocaleString('en-US')} ${w.countLabel} per run · median of ${w.reps} runs, whiskers min-max · ${w.description}`;
    if (sub.length > 160) sub = `${sub.slice(0, 159)}…`;
    parts.push(`<text x="10" y="${y + 31}" class="sub">${esc(sub)}</text>`);
    y += TITLE_H + 16;
    const scale = Math.max(1, ...w.contestants.map((c) => (Number.isFinite(c.max) ? c.max : 0)));
    for (const c of w.contestants) {
      const mid = y + ROW_H / 2;
      parts.push(`<text x="${LABEL_W - 8}" y="${mid + 4}" class="label" text-anchor="end">${esc(c.label)}</text>`);
      if (c.skipped || !Number.isFinite(c.median)) {
        parts.push(`<text x="${LABEL_W + 4}" y="${mid + 4}" class="note">${esc(c.skipped ? `skipped: ${c.skipped}` : `failed: ${c.error ?? 'no run'}`)}</text>`);
      } else {
        const len = (v: number) => (v / scale) * BAR_W;
        parts.push(`<rect x="${LABEL_W}" y="${y + 3}" width="${len(c.median).toFixed(1)}" height="${ROW_H - 6}" fill="${COLORS[c.kind]}"><title>${esc(`${c.label}: ${Math.round(c.median).toLocaleString('en-US')} ops/s (min ${Math.round(c.min).toLocaleString('en-US')}, max ${Math.round(c.max).toLocaleString('en-US')})`)}</title></rect>`);
        parts.push(`<line x1="${(LABEL_W + len(c.min)).toFixed(1)}" x2="${(LABEL_W + len(c.max)).toFixed(1)}" y1="${mid}" y2="${mid}" class="whisker"/>`);
        const failed = c.error ? ' (failed)' : '';
        const base = w.contestants.find((b) => b.id === w.baseline);
        const ratio = base && c.id !== base.id && Number.isFinite(base.median) && !c.error ? ` · ${(c.median / base.median).toFixed(2)}x ${base.id}` : '';
        parts.push(`<text x="${(LABEL_W + Math.max(len(c.median), len(c.max)) + 6).toFixed(1)}" y="${mid + 4}" class="value">${fmt(c.median)}/s${ratio}${failed}</text>`);
      }
      y += ROW_H;
    }
    y += PANEL_GAP;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:14px;font-weight:bold}.label{font-size:12px}.value{font-size:11px;fill:#333}.note{font-size:11px;fill:#a00}.whisker{stroke:#222;stroke-width:1.5}.h1{font-size:17px;font-weight:bold}.sub{font-size:11px;fill:#555}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    '<text x="10" y="22" class="h1">redloop benchmark: operations per second (higher is better)</text>',
    ...subtitles.map((line, i) => `<text x="10" y="${40 + 14 * i}" class="sub">${esc(line)}</text>`),
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
