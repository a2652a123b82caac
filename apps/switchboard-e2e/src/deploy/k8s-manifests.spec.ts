/**
 * k8s/, offline: `kubectl kustomize` renders each overlay, every object validates against the
 * Kubernetes schemas (kubernetes-models; the Prometheus Operator's for ServiceMonitor and
 * PrometheusRule), and the Deployments are fit to run: probes on the apps' real endpoints, resources,
 * a non-root read-only securityContext, a graceful stop, only variables the app reads, Secrets by name.
 */
import { isDeepStrictEqual } from 'node:util';
import * as monitoringModels from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as coreV1 from 'kubernetes-models/v1';
import { alertRules, appEnv, hasKubectl, isKnownVariable, K8sObject, kustomize, probeEndpoints, readRepoFile, SERVICE_APPS } from './deploy-checks.util';

interface Model {
  validate(): void;
}
type ModelClass = new (data: never) => Model;

/** The API groups the manifests may use, each with its generated schema classes. */
const MODELS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'batch/v1': batchV1,
  'autoscaling/v2': autoscalingV2,
  'policy/v1': policyV1,
  'monitoring.coreos.com/v1': monitoringModels,
};

/** Throws what the schema says is wrong with `object`. */
function validateAgainstSchema(object: K8sObject): void {
  const Model = MODELS[object.apiVersion]?.[object.kind] as ModelClass | undefined;
  if (!Model) throw new Error(`${object.apiVersion} ${object.kind} has no schema here: add its models`);
  new Model(object as never).validate();
}

interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: unknown } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  volumes?: { name: string; secret?: { secretName: string } }[];
}

interface Workload extends K8sObject {
  spec: { replicas?: number; selector?: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

const byKind = <T extends K8sObject>(objects: K8sObject[], kind: string): T[] => objects.filter((o) => o.kind === kind) as T[];

const kubectl = hasKubectl();
if (!kubectl) {
  // CI has kubectl; a machine without it cannot render the overlays, so these checks are skipped there.
  process.stderr.write('k8s-manifests.spec: kubectl is not installed: skipping the Kubernetes manifest checks (install kubectl to run them)\n');
}
const describeWithKubectl = kubectl ? describe : describe.skip;

describe.each(['development', 'production'])('k8s/overlays/%s', (overlay) => {
  let objects: K8sObject[];
  let deployments: Workload[];
  beforeAll(() => {
    if (!kubectl) return;
    objects = kustomize(`k8s/overlays/${overlay}`) ?? [];
    deployments = byKind<Workload>(objects, 'Deployment');
  });

  describeWithKubectl('renders and validates', () => {
    it('renders with kubectl kustomize into the objects of every app', () => {
      expect(objects.length).toBeGreaterThan(10);
      expect(deployments.map((d) => d.metadata.name).sort()).toEqual([...SERVICE_APPS].sort());
      expect(byKind(objects, 'Service').map((s) => s.metadata.name).sort()).toEqual([...SERVICE_APPS].sort());
      expect(byKind(objects, 'Job').map((j) => j.metadata.name)).toEqual(['registry-migrate']);
      for (const object of objects) if (object.kind !== 'Namespace') expect([object.kind, object.metadata.name, object.metadata.namespace]).toEqual([object.kind, object.metadata.name, expect.stringMatching(/^switchboard/)]);
    });

    it('every object validates against its Kubernetes schema', () => {
      const problems: string[] = [];
      for (const object of objects) {
        try {
          validateAgainstSchema(object);
        } catch (error) {
          problems.push(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('the schema validation refuses a broken object (it is not a no-op)', () => {
      const deployment = structuredClone(deployments[0]) as Workload;
      (deployment.spec as { replicas: unknown }).replicas = 'two';
      expect(() => validateAgainstSchema(deployment)).toThrow(/replicas must be integer/);
      const noContainers = structuredClone(deployments[0]) as Workload;
      delete (noContainers.spec.template.spec as Partial<PodSpec>).containers;
      expect(() => validateAgainstSchema(noContainers)).toThrow(/containers/);
    });

    it('commits no Secret; every Secret it references is one k8s/README.md says how to create', () => {
      expect(byKind(objects, 'Secret')).toEqual([]);
      const readme = readRepoFile('k8s/README.md');
      const referenced = new Set<string>();
      for (const workload of [...deployments, ...byKind<Workload>(objects, 'Job')]) {
        const spec = workload.spec.template.spec;
        for (const volume of spec.volumes ?? []) if (volume.secret) referenced.add(volume.secret.secretName);
        for (const c of spec.containers) {
          for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) referenced.add(e.valueFrom.secretKeyRef.name);
          for (const from of c.envFrom ?? []) if (from.secretRef) referenced.add(from.secretRef.name);
        }
      }
      expect(referenced.size).toBeGreaterThan(3);
      for (const name of referenced) expect([name, readme.includes(`create secret generic ${name} `)]).toEqual([name, true]);
    });

    it('pins every image to a tag', () => {
      for (const workload of [...deployments, ...byKind<Workload>(objects, 'Job')]) {
        for (const c of workload.spec.template.spec.containers) expect([workload.metadata.name, c.image]).toEqual([workload.metadata.name, expect.stringMatching(/^[a-z0-9./-]+:(?!latest$)[A-Za-z0-9._-]+$/)]);
      }
    });
  });

  describeWithKubectl('Deployments', () => {
    const configMap = (name: string): Record<string, string> => {
      const found = byKind<K8sObject & { data?: Record<string, string> }>(objects, 'ConfigMap').find((c) => c.metadata.name === name);
      if (!found) throw new Error(`ConfigMap ${name} is referenced but not rendered`);
      return found.data ?? {};
    };
    /** Every variable a container gets, and from where. */
    const variablesOf = (c: Container): Map<string, string> => {
      const variables = new Map<string, string>();
      for (const from of c.envFrom ?? []) if (from.configMapRef) for (const [k, v] of Object.entries(configMap(from.configMapRef.name))) variables.set(k, v);
      for (const e of c.env ?? []) variables.set(e.name, e.value ?? (e.valueFrom?.configMapKeyRef ? configMap(e.valueFrom.configMapKeyRef.name)[e.valueFrom.configMapKeyRef.key] ?? '' : '<from elsewhere>'));
      return variables;
    };
    const app = (d: Workload) => d.metadata.name;
    const container = (d: Workload): Container => {
      expect(d.spec.template.spec.containers.map((c) => c.name)).toEqual([app(d)]);
      return d.spec.template.spec.containers[0] as Container;
    };

    it('set only variables the app reads, on the port it listens on', () => {
      const problems: string[] = [];
      for (const d of deployments) {
        const env = appEnv(app(d));
        const variables = variablesOf(container(d));
        for (const name of variables.keys()) if (!isKnownVariable(app(d), env, name)) problems.push(`${app(d)}: ${name} is not read by ${env.source}`);
        const port = Number(variables.get('PORT') ?? env.defaultPort);
        expect([app(d), container(d).ports]).toEqual([app(d), [expect.objectContaining({ name: 'http', containerPort: port })]]);
        expect([app(d), d.spec.template.metadata.labels, (d.spec.template.metadata as { annotations?: Record<string, string> }).annotations?.['prometheus.io/port']]).toEqual([
          app(d),
          expect.objectContaining(d.spec.selector?.matchLabels),
          String(port),
        ]);
      }
      expect(problems).toEqual([]);
    });

    it("probe the apps' real endpoints: readiness /health, liveness and startup on a path the app serves, by the named port", () => {
      for (const d of deployments) {
        const c = container(d);
        const served = probeEndpoints(app(d));
        expect([app(d), [...served].sort()]).toEqual([app(d), ['/health', '/metrics']]);
        expect([app(d), c.readinessProbe?.httpGet]).toEqual([app(d), { path: '/health', port: 'http' }]);
        for (const probe of [c.livenessProbe, c.startupProbe]) {
          expect([app(d), served.has(probe?.httpGet?.path ?? ''), probe?.httpGet?.port]).toEqual([app(d), true, 'http']);
        }
      }
    });

    it('request and limit CPU and memory', () => {
      for (const d of deployments) {
        const { resources } = container(d);
        for (const kind of ['requests', 'limits'] as const) for (const resource of ['cpu', 'memory']) expect([app(d), kind, resource, resources?.[kind]?.[resource]]).toEqual([app(d), kind, resource, expect.any(String)]);
      }
    });

    it('run non-root, read-only, without capabilities or privilege escalation, under the RuntimeDefault seccomp profile', () => {
      for (const workload of [...deployments, ...byKind<Workload>(objects, 'Job')]) {
        const pod = workload.spec.template.spec;
        const name = workload.metadata.name;
        expect([name, pod.securityContext?.runAsNonRoot, (pod.securityContext?.runAsUser ?? 0) > 0, pod.securityContext?.seccompProfile?.type]).toEqual([name, true, true, 'RuntimeDefault']);
        for (const c of pod.containers) {
          expect([name, c.securityContext?.allowPrivilegeEscalation, c.securityContext?.readOnlyRootFilesystem, c.securityContext?.capabilities?.drop]).toEqual([name, false, true, ['ALL']]);
          // A read-only root needs a writable /tmp for whatever a library puts there.
          expect([name, c.volumeMounts?.some((m) => m.mountPath === '/tmp')]).toEqual([name, true]);
        }
      }
    });

    it('stop gracefully: a preStop pause for endpoint removal, then SHUTDOWN_GRACE_MS, inside terminationGracePeriodSeconds', () => {
      for (const d of deployments) {
        const c = container(d);
        const pause = c.lifecycle?.preStop?.exec?.command;
        expect([app(d), pause?.[0]]).toEqual([app(d), 'sleep']);
        const graceMs = Number(variablesOf(c).get('SHUTDOWN_GRACE_MS') ?? 25_000); // the production default
        const budgetMs = (d.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
        expect([app(d), budgetMs > Number(pause?.[1]) * 1000 + graceMs]).toEqual([app(d), true]);
      }
    });

    it('each Service selects its Deployment and targets the named port', () => {
      for (const d of deployments) {
        const service = byKind<K8sObject & { spec: { selector: Record<string, string>; ports: { name: string; targetPort: string | number }[] } }>(objects, 'Service').find((s) => s.metadata.name === app(d));
        expect(d.spec.template.metadata.labels).toEqual(expect.objectContaining(service?.spec.selector));
        expect(service?.spec.ports.map((p) => [p.name, p.targetPort])).toEqual([['http', 'http']]);
      }
    });

    it('autoscale llm-router and registry-api (HPA, no replicas to fight it), and budget disruptions for every app', () => {
      const hpas = byKind<K8sObject & { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number } }>(objects, 'HorizontalPodAutoscaler');
      expect(hpas.map((h) => h.spec.scaleTargetRef.name).sort()).toEqual(['llm-router', 'registry-api']);
      for (const hpa of hpas) {
        const target = deployments.find((d) => d.metadata.name === hpa.spec.scaleTargetRef.name);
        expect([hpa.metadata.name, target?.spec.replicas, hpa.spec.minReplicas <= hpa.spec.maxReplicas]).toEqual([hpa.metadata.name, undefined, true]);
      }
      const budgets = byKind<K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(objects, 'PodDisruptionBudget');
      for (const d of deployments) {
        expect([app(d), budgets.filter((b) => isDeepStrictEqual(b.spec.selector.matchLabels, d.spec.selector?.matchLabels)).length]).toEqual([app(d), 1]);
      }
    });

    it("migrate with registry-api's image, configuration and Secrets in a Job", () => {
      const [job] = byKind<Workload>(objects, 'Job');
      const registry = deployments.find((d) => app(d) === 'registry-api') as Workload;
      const migrate = job?.spec.template.spec.containers[0] as Container;
      expect(migrate.args).toEqual(['node', 'dist/apps/registry-api/src/main.js', 'migrate']);
      expect(migrate.image).toBe(container(registry).image);
      expect(migrate.envFrom).toEqual(container(registry).envFrom);
      expect(migrate.env).toEqual(container(registry).env);
    });
  });

  if (overlay === 'production') {
    describeWithKubectl('monitoring (Prometheus Operator)', () => {
      it('a ServiceMonitor scrapes /metrics on the named port of every app Service', () => {
        const [monitor] = byKind<K8sObject & { spec: { selector: { matchExpressions: { key: string; operator: string; values: string[] }[] }; endpoints: { port: string; path: string }[] } }>(objects, 'ServiceMonitor');
        expect(monitor?.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
        const [expression] = monitor?.spec.selector.matchExpressions ?? [];
        expect([expression?.key, expression?.operator, [...(expression?.values ?? [])].sort()]).toEqual(['app.kubernetes.io/name', 'In', [...SERVICE_APPS].sort()]);
        for (const service of byKind(objects, 'Service')) expect(service.metadata.labels?.['app.kubernetes.io/name']).toBe(service.metadata.name);
      });

      it('the PrometheusRule holds exactly deploy/prometheus/alerts.yml', () => {
        const [rule] = byKind<K8sObject & { spec: unknown }>(objects, 'PrometheusRule');
        expect(rule?.spec).toEqual(alertRules());
      });
    });
  }
});
