/**
 * What the deploy checks (docker-compose.yml, k8s/, deploy/prometheus, deploy/grafana) compare against:
 * the variables each app reads, its port, and the metrics it registers, all read from the sources so
 * that the checks follow the code. No I/O beyond reading the repository's files.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import { collectDefaultMetrics, Registry } from 'prom-client';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const ROOT = resolve(__dirname, '../../../..');

export const readRepoFile = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The four long-running apps, the ones deployed as services. */
export const SERVICE_APPS = ['registry-api', 'health-prober', 'cache-invalidator', 'llm-router'] as const;
export type ServiceApp = (typeof SERVICE_APPS)[number];

/** Apps the Dockerfile can build (`--build-arg APP=…`): every project under apps/ with a build target. */
export function buildableApps(): string[] {
  return readdirSync(join(ROOT, 'apps')).filter((app) => {
    const project = join(ROOT, 'apps', app, 'project.json');
    return existsSync(project) && Boolean((JSON.parse(readFileSync(project, 'utf8')) as { targets?: Record<string, unknown> }).targets?.['build']);
  });
}

function sourceFiles(dir: string): string[] {
  const absolute = join(ROOT, dir);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !/\.(spec|integration-spec|e2e-spec)\.ts$/.test(file) && !file.split('/').includes('testing'))
    .map((file) => join(dir, file));
}

function parseTs(path: string): ts.SourceFile {
  return ts.createSourceFile(path, readRepoFile(path), ts.ScriptTarget.ES2022, true);
}

function visit(node: ts.Node, each: (node: ts.Node) => void): void {
  each(node);
  ts.forEachChild(node, (child) => visit(child, each));
}

interface EnvClass {
  base?: string;
  variables: Map<string, { secret: boolean; default?: string }>;
}

/** Every env class in `files`: its UPPER_CASE properties (with @Secret and a literal default) and the class it extends. */
function envClasses(files: string[]): Map<string, EnvClass> {
  const classes = new Map<string, EnvClass>();
  for (const file of files) {
    visit(parseTs(file), (node) => {
      if (!ts.isClassDeclaration(node) || !node.name) return;
      const base = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression.getText();
      const variables = new Map<string, { secret: boolean; default?: string }>();
      for (const member of node.members) {
        if (!ts.isPropertyDeclaration(member) || !ts.isIdentifier(member.name) || !/^[A-Z][A-Z0-9_]*$/.test(member.name.text)) continue;
        const decorators = ts.getDecorators(member) ?? [];
        const secret = decorators.some((d) => /^Secret\(/.test(d.expression.getText()));
        const init = member.initializer;
        const literal = init && (ts.isStringLiteral(init) || ts.isNumericLiteral(init)) ? init.text : init?.getText().replace(/_/g, '');
        variables.set(member.name.text, { secret, default: literal });
      }
      classes.set(node.name.text, { base, variables });
    });
  }
  return classes;
}

export interface AppEnv {
  /** Every variable the app reads. */
  variables: Set<string>;
  /** Variables marked @Secret (configuration classes) or named like one. */
  secrets: Set<string>;
  /** The port it listens on unless PORT says otherwise. */
  defaultPort?: number;
  /** Where the list comes from, for messages. */
  source: string;
}

const SECRET_NAME = /(^|_)(TOKEN|PASSWORD|SECRET|API_KEYS?)(_|$)/;

/**
 * The variables an app reads: its configuration class and the classes it extends (apps with one), or
 * the `env.X` / `env['X']` / `read(env, 'X')` reads of its sources and of the SDK (admin-cli, the mock).
 */
export function appEnv(app: string): AppEnv {
  const configFile = `apps/${app}/src/config/${app}.config.ts`;
  if (existsSync(join(ROOT, configFile))) {
    const classes = envClasses(['libs/util-config/src/lib/app-env.config.ts', configFile]);
    const own = [...classes.entries()].find(([name, c]) => c.base && name.endsWith('Config') && classes.has(c.base));
    if (!own) throw new Error(`${configFile}: no configuration class extending a libs/util-config env class`);
    const variables = new Set<string>();
    const secrets = new Set<string>();
    let defaultPort: number | undefined;
    // Walk from the app's class up: the first declaration of a variable (its override) wins.
    for (let current: EnvClass | undefined = own[1]; current; current = current.base ? classes.get(current.base) : undefined) {
      for (const [name, v] of current.variables) {
        if (!variables.has(name) && name === 'PORT') defaultPort = Number(v.default);
        if (v.secret) secrets.add(name);
        variables.add(name);
      }
    }
    return { variables, secrets, defaultPort, source: `${own[0]} (${configFile})` };
  }
  const reads = /\benv(?:\.([A-Z][A-Z0-9_]+)\b|\[\s*'([A-Z][A-Z0-9_]+)'\s*\]|,\s*'([A-Z][A-Z0-9_]+)')/g;
  const files = [...sourceFiles(`apps/${app}/src`), ...(app === 'mock-llm-backend' ? sourceFiles('libs/sdk/src') : [])];
  const variables = new Set<string>();
  for (const file of files) for (const m of readRepoFile(file).matchAll(reads)) variables.add((m[1] ?? m[2] ?? m[3]) as string);
  if (!variables.size) throw new Error(`apps/${app}: found no environment variable it reads`);
  return { variables, secrets: new Set([...variables].filter((v) => SECRET_NAME.test(v))), source: `the env reads of apps/${app}/src` };
}

/** The OpenTelemetry SDK reads the standard OTEL_* variables in the apps that start it (a tracing.ts imported first). */
export function readsOtelVariables(app: string): boolean {
  return existsSync(join(ROOT, `apps/${app}/src/tracing.ts`));
}

export function isKnownVariable(app: string, env: AppEnv, name: string): boolean {
  return env.variables.has(name) || (/^OTEL_[A-Z0-9_]+$/.test(name) && readsOtelVariables(app));
}

/**
 * The GET paths a probe may use, read from the sources: the app's `@Controller('health')` (a
 * parameterless `@Get()`), and `/metrics` when its module imports ObservabilityModule (whose
 * MetricsController serves it).
 */
export function probeEndpoints(app: string): Set<string> {
  const endpoints = new Set<string>();
  for (const file of sourceFiles(`apps/${app}/src`).filter((f) => f.endsWith('.controller.ts'))) {
    const text = readRepoFile(file);
    const controller = /@Controller\('([a-z/-]+)'\)/.exec(text)?.[1];
    if (controller === 'health' && /@Get\(\)/.test(text)) endpoints.add('/health');
  }
  const observability = readRepoFile('libs/util-observability/src/lib/observability.module.ts');
  if (/@Controller\('metrics'\)/.test(observability) && /ObservabilityModule\.forRoot\(/.test(readRepoFile(`apps/${app}/src/app.module.ts`))) endpoints.add('/metrics');
  return endpoints;
}

// ---------------------------------------------------------------------------------------------------
// Metrics

export interface KnownMetric {
  type: 'counter' | 'gauge' | 'histogram' | 'summary';
  /** undefined: not known (prom-client's defaults); any label is then accepted. */
  labels?: Set<string>;
}

const METRIC_CLASSES: Record<string, KnownMetric['type']> = { Counter: 'counter', Gauge: 'gauge', Histogram: 'histogram', Summary: 'summary' };

/**
 * Every metric the apps and libs register with a literal name (`new Counter({ name: '…', labelNames })`),
 * plus prom-client's default process/nodejs metrics (ObservabilityModule collects them in every app).
 */
export async function registeredMetrics(): Promise<Map<string, KnownMetric>> {
  const metrics = new Map<string, KnownMetric>();
  const dirs = readdirSync(join(ROOT, 'apps')).map((a) => `apps/${a}/src`).concat(readdirSync(join(ROOT, 'libs')).map((l) => `libs/${l}/src`));
  for (const file of dirs.flatMap(sourceFiles)) {
    if (!/new (Counter|Gauge|Histogram|Summary)\(/.test(readRepoFile(file))) continue;
    visit(parseTs(file), (node) => {
      if (!ts.isNewExpression(node) || !ts.isIdentifier(node.expression)) return;
      const type = METRIC_CLASSES[node.expression.text];
      const options = node.arguments?.[0];
      if (!type || !options || !ts.isObjectLiteralExpression(options)) return;
      const property = (key: string) =>
        options.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && p.name.getText() === key)?.initializer;
      const name = property('name');
      if (!name || !ts.isStringLiteral(name)) return; // computed names (libs' shared counters) are checked by the e2e scrape
      const labelNames = property('labelNames');
      const labels = new Set(labelNames && ts.isArrayLiteralExpression(labelNames) ? labelNames.elements.filter(ts.isStringLiteral).map((e) => e.text) : []);
      metrics.set(name.text, { type, labels });
    });
  }
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  for (const { name, type } of await defaults.getMetricsAsJSON()) metrics.set(name, { type: String(type) as KnownMetric['type'] });
  return metrics;
}

/** Labels every scraped series may carry: the apps' default `app` label and Prometheus' target labels. */
export const COMMON_LABELS = new Set(['app', 'job', 'instance', '__name__']);

/** The series names a metric exposes (a histogram's `_bucket`, `_sum`, `_count`). */
export function exposedSeries(name: string, type: KnownMetric['type']): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

export interface PromqlUse {
  metrics: { name: string; matchers: string[] }[];
  /** Labels of `by (…)` / `without (…)`, with the metrics of the aggregated expression. */
  groupings: { labels: string[]; metrics: string[] }[];
  errors: string[];
}

/** Grafana's interval variables, replaced by a duration before parsing (`$model` stays inside strings). */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

type SyntaxNode = ReturnType<typeof promqlParser.parse>['topNode'];

function walk(node: SyntaxNode, each: (node: SyntaxNode) => void): void {
  each(node);
  for (let child = node.firstChild; child; child = child.nextSibling) walk(child, each);
}

/** Parses a PromQL expression (Prometheus' own lezer grammar): the metrics it selects, their label matchers, its groupings, syntax errors. */
export function analysePromql(expr: string): PromqlUse {
  const tree = promqlParser.parse(expr);
  const use: PromqlUse = { metrics: [], groupings: [], errors: [] };
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) use.errors.push(`syntax error at ${cursor.from}: "${expr.slice(Math.max(0, cursor.from - 20), cursor.to + 20)}"`);
  } while (cursor.next());
  const text = (node: SyntaxNode): string => expr.slice(node.from, node.to);
  const selectorsIn = (node: SyntaxNode): { name: string; matchers: string[] }[] => {
    const found: { name: string; matchers: string[] }[] = [];
    walk(node, (n) => {
      if (n.name !== 'VectorSelector') return;
      const identifier = n.getChild('Identifier');
      const matchers = (n.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).flatMap((m) => {
        const label = m.getChild('LabelName');
        return label ? [text(label)] : [];
      });
      if (identifier) found.push({ name: text(identifier), matchers });
    });
    return found;
  };
  use.metrics = selectorsIn(tree.topNode);
  walk(tree.topNode, (n) => {
    if (n.name !== 'AggregateExpr') return;
    const labels = n.getChild('AggregateModifier')?.getChild('GroupingLabels')?.getChildren('LabelName').map(text) ?? [];
    if (labels.length) use.groupings.push({ labels, metrics: selectorsIn(n).map((s) => s.name) });
  });
  return use;
}

/**
 * Problems with the metrics and labels `expr` uses, against what the apps register: an unknown series,
 * a label matcher or grouping label the metrics do not carry.
 */
export function metricProblems(expr: string, known: Map<string, KnownMetric>): string[] {
  const use = analysePromql(withoutGrafanaVariables(expr));
  const problems = [...use.errors];
  const seriesIndex = new Map<string, { metric: string; info: KnownMetric; bucket: boolean }>();
  for (const [metric, info] of known) for (const series of exposedSeries(metric, info.type)) seriesIndex.set(series, { metric, info, bucket: series.endsWith('_bucket') && info.type === 'histogram' });
  const labelsOf = (series: string): Set<string> | undefined => {
    if (series === 'up') return new Set();
    const entry = seriesIndex.get(series);
    if (!entry?.info.labels) return undefined;
    return new Set([...entry.info.labels, ...(entry.bucket ? ['le'] : []), ...(entry.info.type === 'summary' ? ['quantile'] : [])]);
  };
  for (const { name, matchers } of use.metrics) {
    if (name !== 'up' && !seriesIndex.has(name)) {
      problems.push(`unknown metric ${name}`);
      continue;
    }
    const labels = labelsOf(name);
    for (const label of matchers) if (labels && !labels.has(label) && !COMMON_LABELS.has(label)) problems.push(`${name} has no label "${label}"`);
  }
  for (const { labels, metrics } of use.groupings) {
    const sets = metrics.map(labelsOf);
    if (!sets.length || sets.some((s) => s === undefined)) continue;
    const available = new Set(sets.flatMap((s) => [...(s as Set<string>)]));
    for (const label of labels) if (!available.has(label) && !COMMON_LABELS.has(label)) problems.push(`grouping by "${label}", which none of ${metrics.join(', ')} carries`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Dashboards and alert rules

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; interval?: string; rules: AlertRule[] }[];
}

export function alertRules(): RuleFile {
  return parseYaml(readRepoFile('deploy/prometheus/alerts.yml')) as RuleFile;
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string; datasource?: { type: string; uid: string } }[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating?: { list: { name: string; query?: unknown; definition?: string; datasource?: { uid: string } }[] };
}

export function dashboardFiles(): string[] {
  return readdirSync(join(ROOT, 'deploy/grafana/dashboards')).filter((f) => f.endsWith('.json')).map((f) => `deploy/grafana/dashboards/${f}`);
}

export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboards and alert rules, with where it is. */
export function promqlExpressions(): { where: string; expr: string }[] {
  const found: { where: string; expr: string }[] = [];
  for (const group of alertRules().groups) for (const rule of group.rules) found.push({ where: `alerts.yml ${rule.alert ?? rule.record}`, expr: rule.expr });
  for (const file of dashboardFiles()) {
    const dashboard = JSON.parse(readRepoFile(file)) as Dashboard;
    for (const panel of dashboardPanels(dashboard)) for (const target of panel.targets ?? []) found.push({ where: `${file} "${panel.title}" ${target.refId}`, expr: target.expr });
  }
  return found;
}

/** The metric names (as selected, e.g. `x_bucket`) that the dashboards and alert rules use, `up` aside. */
export function usedSeriesNames(): Set<string> {
  return new Set(promqlExpressions().flatMap(({ expr }) => analysePromql(withoutGrafanaVariables(expr)).metrics.map((m) => m.name)).filter((n) => n !== 'up'));
}

// ---------------------------------------------------------------------------------------------------
// YAML and kustomize

export function parseYaml(text: string): unknown {
  const docs = parseAllDocuments(text, { merge: true });
  if (docs.length !== 1) throw new Error(`expected one YAML document, found ${docs.length}`);
  const [doc] = docs;
  if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('; '));
  return doc.toJS({ maxAliasCount: 1000 });
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** `kubectl kustomize <dir>`'s objects; undefined when kubectl is not installed. */
export function kustomize(dir: string): K8sObject[] | undefined {
  const run = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${run.status}): ${run.stderr}`);
  return parseAllDocuments(run.stdout).map((doc) => {
    if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('; '));
    return doc.toJS() as K8sObject;
  });
}

export function hasKubectl(): boolean {
  return (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).error as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT';
}
