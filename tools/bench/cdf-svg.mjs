// A latency CDF as a hand-written SVG (no plotting dependency): x = latency in ms on a log scale (the
// tails of proxies differ by orders of magnitude), y = share of requests at or under it.
// Each curve: { label, points: [[ms, fraction 0..1], …] } in ascending order.

const COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#b279a2', '#9d755d'];
const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/** Returns the SVG document as a string. */
export function latencyCdfSvg(curves, { title = 'Latency CDF', subtitle = '', width = 900, height = 540 } = {}) {
  const margin = { left: 70, right: 200, top: 60, bottom: 55 };
  const [w, h] = [width - margin.left - margin.right, height - margin.top - margin.bottom];
  const all = curves.flatMap((c) => c.points.map(([ms]) => ms)).filter((ms) => ms > 0);
  // Decades around the data, so the axis ticks are 1-2-5 steps that always include the data.
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, lo * 10)));
  const x = (ms) => margin.left + (w * (Math.log10(Math.max(ms, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const y = (fraction) => margin.top + h * (1 - fraction);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${margin.left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${margin.left}" y="42" fill="#555">${esc(subtitle)}</text>`,
  ];
  for (let decade = lo; decade < hi * 1.001; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const ms = decade * step;
      if (ms > hi * 1.001) break;
      const px = x(ms).toFixed(1);
      out.push(`<line x1="${px}" x2="${px}" y1="${margin.top}" y2="${margin.top + h}" stroke="${step === 1 ? '#ccc' : '#eee'}"/>`);
      out.push(`<text x="${px}" y="${margin.top + h + 16}" text-anchor="middle" fill="#333">${Number(ms.toPrecision(3))}</text>`);
    }
  }
  for (const fraction of [0, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
    const py = y(fraction).toFixed(1);
    out.push(`<line x1="${margin.left}" x2="${margin.left + w}" y1="${py}" y2="${py}" stroke="#eee"/>`);
    out.push(`<text x="${margin.left - 6}" y="${py}" dy="4" text-anchor="end" fill="#333">${fraction * 100}%</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${margin.left + w / 2}" y="${height - 12}" text-anchor="middle">latency (ms, log scale)</text>`);
  out.push(`<text transform="translate(16 ${margin.top + h / 2}) rotate(-90)" text-anchor="middle">requests at or under (%)</text>`);
  curves.forEach(({ label, points }, i) => {
    const colour = COLOURS[i % COLOURS.length];
    // A step curve: the share stays flat until the next percentile's latency.
    let d = '';
    let previous = 0;
    for (const [ms, fraction] of points) {
      d += `${d ? 'L' : 'M'}${x(ms).toFixed(1)},${y(previous).toFixed(1)}L${x(ms).toFixed(1)},${y(fraction).toFixed(1)}`;
      previous = fraction;
    }
    out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    const p50 = points.find(([, f]) => f >= 0.5)?.[0];
    const p99 = points.find(([, f]) => f >= 0.99)?.[0];
    const ly = margin.top + 10 + i * 38;
    out.push(`<line x1="${margin.left + w + 14}" x2="${margin.left + w + 38}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="3"/>`);
    out.push(`<text x="${margin.left + w + 44}" y="${ly + 4}">${esc(label)}</text>`);
    out.push(`<text x="${margin.left + w + 44}" y="${ly + 19}" fill="#555">p50 ${p50?.toFixed(3)} · p99 ${p99?.toFixed(3)} ms</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
