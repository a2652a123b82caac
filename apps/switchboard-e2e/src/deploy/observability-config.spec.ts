/**
 * deploy/prometheus and deploy/grafana, offline: every PromQL expression parses (Prometheus' own
 * grammar), uses only metrics and labels the apps register, the rules are well formed, and the scrape
 * and provisioning files point at what docker-compose.yml runs.
 */
import {
  alertRules,
  analysePromql,
  Dashboard,
  dashboardFiles,
  dashboardPanels,
  KnownMetric,
  metricProblems,
  parseYaml,
  promqlExpressions,
  readRepoFile,
  registeredMetrics,
  SERVICE_APPS,
  usedSeriesNames,
  withoutGrafanaVariables,
} from './deploy-checks.util';

interface ComposeFile {
  services: Record<string, { volumes?: (string | { source: string; target: string })[]; environment?: Record<string, string> }>;
}

const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

describe('dashboards and alert rules', () => {
  let known: Map<string, KnownMetric>;
  beforeAll(async () => {
    known = await registeredMetrics();
  });

  it('finds the metrics the apps register (the check has something to compare against)', () => {
    for (const name of ['router_requests_total', 'router_time_to_first_token_seconds', 'registry_writes_total', 'prober_self_preservation', 'cache_invalidation_lag_seconds', 'process_resident_memory_bytes']) {
      expect(known.has(name)).toBe(true);
    }
    expect(known.get('router_requests_total')?.labels).toEqual(new Set(['model', 'instance', 'code']));
  });

  it('tells an unknown metric, an unknown label and a syntax error apart', () => {
    expect(metricProblems('sum by (model) (rate(router_requests_total[5m]))', known)).toEqual([]);
    expect(metricProblems('rate(router_request_total[5m])', known)).toEqual(['unknown metric router_request_total']);
    expect(metricProblems('rate(router_requests_total{modle="x"}[5m])', known)).toEqual(['router_requests_total has no label "modle"']);
    expect(metricProblems('sum by (kind) (rate(router_requests_total[5m]))', known)).toEqual(['grouping by "kind", which none of router_requests_total carries']);
    expect(metricProblems('sum(rate(router_requests_total[5m])', known)[0]).toMatch(/^syntax error/);
    expect(metricProblems('histogram_quantile(0.9, sum by (le, model) (rate(router_request_duration_seconds_bucket[$__rate_interval])))', known)).toEqual([]);
  });

  it('every expression parses and uses only registered metrics and their labels', () => {
    const expressions = promqlExpressions();
    expect(expressions.length).toBeGreaterThan(30);
    const problems = expressions.flatMap(({ where, expr }) => metricProblems(expr, known).map((p) => `${where}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('the dashboard covers what the issue asks for', () => {
    const used = usedSeriesNames();
    for (const name of [
      'router_requests_total',
      'router_request_duration_seconds_bucket',
      'router_time_to_first_token_seconds_bucket',
      'router_errors_total',
      'router_ejections_total',
      'router_panic_total',
      'registry_writes_total',
      'registry_events_published_total',
      'prober_probes_total',
      'prober_reports_total',
      'prober_self_preservation',
      'registry_cache_hits_total',
      'registry_cache_misses_total',
      'cache_invalidation_lag_seconds_bucket',
    ]) {
      expect([name, used.has(name)]).toEqual([name, true]);
    }
  });

  it('latency and TTFT percentiles are per model, from histogram buckets', () => {
    const exprs = promqlExpressions().map((e) => e.expr).filter((e) => e.startsWith('histogram_quantile('));
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      const use = analysePromql(withoutGrafanaVariables(expr));
      expect(use.metrics.every((m) => m.name.endsWith('_bucket'))).toBe(true);
      expect(use.groupings[0]?.labels).toContain('le');
    }
    const perModel = exprs.filter((e) => /router_(request_duration|time_to_first_token)_seconds_bucket/.test(e));
    expect(perModel.length).toBeGreaterThanOrEqual(6);
    for (const expr of perModel) expect(analysePromql(withoutGrafanaVariables(expr)).groupings[0]?.labels).toContain('model');
  });

  it('alert rules are well formed: name, parsable expression, duration, severity, summary', () => {
    const rules = alertRules();
    const names = new Set<string>();
    for (const group of rules.groups) {
      expect(group.name).toMatch(/^[a-z0-9-]+$/);
      expect(group.rules.length).toBeGreaterThan(0);
      for (const rule of group.rules) {
        expect(Object.keys(rule).sort()).toEqual(expect.arrayContaining(['alert', 'annotations', 'expr', 'labels']));
        expect(Object.keys(rule).every((k) => ['alert', 'expr', 'for', 'labels', 'annotations', 'keep_firing_for'].includes(k))).toBe(true);
        expect(names.has(rule.alert as string)).toBe(false);
        names.add(rule.alert as string);
        expect(rule.alert).toMatch(/^Switchboard[A-Za-z0-9]+$/);
        if (rule.for !== undefined) expect(rule.for).toMatch(DURATION);
        expect(['critical', 'warning', 'info']).toContain(rule.labels?.['severity']);
        expect(rule.annotations?.['summary']).toEqual(expect.any(String));
        expect(analysePromql(rule.expr).errors).toEqual([]);
      }
    }
    // The obvious failures, each with a rule.
    for (const alert of ['SwitchboardOutboxGrowing', 'SwitchboardNoProberUp', 'SwitchboardSelfPreservation', 'SwitchboardRouter5xxRateHigh', 'SwitchboardAppDown']) {
      expect([alert, names.has(alert)]).toEqual([alert, true]);
    }
  });

  it('"an app down" and "no prober up" watch the scrape jobs that prometheus.yml defines', () => {
    const jobs = new Set((parseYaml(readRepoFile('deploy/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string }[] }).scrape_configs.map((c) => c.job_name));
    const rules = alertRules().groups.flatMap((g) => g.rules);
    const appDown = rules.find((r) => r.alert === 'SwitchboardAppDown')?.expr ?? '';
    for (const app of SERVICE_APPS) {
      expect(jobs.has(app)).toBe(true);
      expect(appDown).toContain(app);
    }
    expect(rules.find((r) => r.alert === 'SwitchboardNoProberUp')?.expr).toContain('job="health-prober"');
  });
});

describe('Grafana and Prometheus files against docker-compose.yml', () => {
  const compose = parseYaml(readRepoFile('docker-compose.yml')) as ComposeFile;
  const mountOf = (service: string, source: string): string | undefined =>
    compose.services[service]?.volumes?.map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target])).find(([from]) => from === source)?.[1];

  it('prometheus.yml scrapes each app at its compose service name and port, and loads the mounted alerts.yml', () => {
    const config = parseYaml(readRepoFile('deploy/prometheus/prometheus.yml')) as { rule_files: string[]; scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] };
    for (const app of SERVICE_APPS) {
      const job = config.scrape_configs.find((c) => c.job_name === app);
      const port = compose.services[app]?.environment?.['PORT'];
      expect(port).toEqual(expect.stringMatching(/^\d+$/));
      expect(job?.static_configs.flatMap((s) => s.targets)).toEqual([`${app}:${port}`]);
      expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    }
    expect(config.rule_files).toEqual([mountOf('prometheus', './deploy/prometheus/alerts.yml')]);
    expect(mountOf('prometheus', './deploy/prometheus/prometheus.yml')).toBe('/etc/prometheus/prometheus.yml');
  });

  it('Grafana provisions the Prometheus service as the datasource the dashboards name, and loads the mounted dashboards', () => {
    const datasources = (parseYaml(readRepoFile('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; type: string; url: string }[] }).datasources;
    const providers = (parseYaml(readRepoFile('deploy/grafana/provisioning/dashboards/switchboard.yml')) as { providers: { options: { path: string } }[] }).providers;
    expect(datasources.map((d) => [d.type, d.url])).toEqual([['prometheus', 'http://prometheus:9090']]);
    expect(compose.services['prometheus']).toBeDefined();
    expect(mountOf('grafana', './deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    expect(providers.map((p) => p.options.path)).toEqual([mountOf('grafana', './deploy/grafana/dashboards')]);
    const uids = new Set(datasources.map((d) => d.uid));
    const files = dashboardFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const dashboard = JSON.parse(readRepoFile(file)) as Dashboard;
      expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
      const panels = dashboardPanels(dashboard);
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      for (const panel of panels) {
        expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
        if (panel.type === 'row') continue;
        expect([panel.title, uids.has(panel.datasource?.uid ?? '')]).toEqual([panel.title, true]);
        expect([panel.title, (panel.targets ?? []).length > 0]).toEqual([panel.title, true]);
        for (const target of panel.targets ?? []) expect(uids.has(target.datasource?.uid ?? panel.datasource?.uid ?? '')).toBe(true);
      }
      for (const variable of dashboard.templating?.list ?? []) if (variable.datasource) expect(uids.has(variable.datasource.uid)).toBe(true);
    }
  });
});
