/** A small inline SVG line of the recent values (gaps where a value is missing); the number beside it says the latest. */
export function Sparkline({ values, label, width = 96, height = 24 }: { values: readonly (number | null)[]; label: string; width?: number; height?: number }) {
  const finite = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const max = Math.max(1e-9, ...finite);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    const x = (i * step).toFixed(1);
    const y = (height - 2 - (v / max) * (height - 4)).toFixed(1);
    d += `${pen ? 'L' : 'M'}${x} ${y}`;
    pen = true;
  });
  return (
    <svg className="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${label}: last ${finite.length} samples, peak ${Math.round(max * 100) / 100}`}>
      <path d={d} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}
