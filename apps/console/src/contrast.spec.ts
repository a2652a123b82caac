import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** WCAG 2 relative luminance and contrast ratio of two #rrggbb colours. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const css = readFileSync(join(__dirname, 'styles.css'), 'utf8');
/** The custom properties of the first rule whose selector starts with `selector`. */
function palette(selector: string): Record<string, string> {
  const start = css.indexOf(`${selector} {`);
  expect(start).toBeGreaterThanOrEqual(0);
  const body = css.slice(start, css.indexOf('}', start));
  return Object.fromEntries([...body.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6});/g)].map((m) => [m[1], m[2]]));
}

// Text on its background, as the page pairs them (badges, buttons, panels, banners, errors).
const TEXT_PAIRS: [string, string][] = [
  ['text', 'bg'],
  ['text', 'panel'],
  ['muted', 'bg'],
  ['muted', 'panel'],
  ['primary-text', 'primary-bg'],
  ['danger', 'bg'],
  ['ok-text', 'ok-bg'],
  ['warn-text', 'warn-bg'],
  ['bad-text', 'bad-bg'],
  ['off-text', 'off-bg'],
  ['info-text', 'info-bg'],
  ['info-text', 'panel'],
];

describe('console colours meet WCAG AA', () => {
  const themes = { light: palette(':root'), 'dark (system)': palette("  :root:not([data-theme='light'])"), 'dark (toggle)': palette(":root[data-theme='dark']") };

  it.each(Object.entries(themes))('%s: text pairs at least 4.5:1, the focus ring at least 3:1', (_name, colours) => {
    for (const [fg, bg] of TEXT_PAIRS) {
      expect({ pair: `${fg} on ${bg}`, ratio: contrast(colours[fg], colours[bg]) >= 4.5 }).toEqual({ pair: `${fg} on ${bg}`, ratio: true });
    }
    expect(contrast(colours['focus'], colours['bg'])).toBeGreaterThanOrEqual(3);
  });

  it('the dark palette is the same for the system preference and the toggle', () => {
    expect(themes['dark (system)']).toEqual(themes['dark (toggle)']);
  });
});
