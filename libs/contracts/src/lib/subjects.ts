/**
 * Every NATS subject and stream name in one place (DESIGN.md "Events and subjects").
 * A `prefix` isolates a deployment or a test suite: `new SubjectSpace('t42')` yields
 * `t42.registry.events.>` and stream `t42_REGISTRY`. Production uses the empty prefix.
 */
export const REGISTRY_EVENT_KINDS = ['registered', 'statusChanged', 'deregistered'] as const;
export type RegistryEventKind = (typeof REGISTRY_EVENT_KINDS)[number];

/** Versioned CloudEvents `type` of each registry event. */
export const REGISTRY_EVENT_TYPES: Readonly<Record<RegistryEventKind, string>> = {
  registered: 'switchboard.registry.registered.v1',
  statusChanged: 'switchboard.registry.statusChanged.v1',
  deregistered: 'switchboard.registry.deregistered.v1',
};

export const REGISTRY_EVENT_SOURCE = 'switchboard/registry-api';

/** Subject tokens (environment, service name, service id) are limited to this, so they are subject-safe. */
export const SUBJECT_TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export class SubjectSpace {
  private readonly p: string;

  constructor(readonly prefix = '') {
    if (prefix && !/^[A-Za-z0-9_-]+$/.test(prefix)) {
      throw new Error(`subject prefix must match [A-Za-z0-9_-]+, got "${prefix}"`);
    }
    this.p = prefix ? `${prefix}.` : '';
  }

  /** JetStream stream that stores the registry events. */
  get registryStream(): string {
    return this.prefix ? `${this.prefix}_REGISTRY` : 'REGISTRY';
  }

  /** Everything the REGISTRY stream captures. */
  get registryEventsAll(): string {
    return `${this.p}registry.events.>`;
  }

  registryEvent(kind: RegistryEventKind, environment: string, serviceName: string): string {
    return `${this.p}registry.events.${kind}.${environment}.${serviceName}`;
  }

  heartbeat(environment: string, serviceName: string, serviceId: string): string {
    return `${this.p}registry.heartbeat.${environment}.${serviceName}.${serviceId}`;
  }

  get heartbeatAll(): string {
    return `${this.p}registry.heartbeat.*.*.*`;
  }

  /** Splits a heartbeat subject back into its tokens; undefined when it is not one. */
  parseHeartbeat(subject: string): { environment: string; serviceName: string; serviceId: string } | undefined {
    const tokens = subject.split('.');
    const offset = this.prefix ? 1 : 0;
    if (tokens.length !== 5 + offset || tokens[offset] !== 'registry' || tokens[offset + 1] !== 'heartbeat') {
      return undefined;
    }
    return { environment: tokens[offset + 2], serviceName: tokens[offset + 3], serviceId: tokens[offset + 4] };
  }

  /** Request/reply: every instance plus the highest revision. */
  get snapshotCommand(): string {
    return `${this.p}registry.cmd.snapshot`;
  }

  /** Request/reply: `{ revision }`, the highest revision, for a consumer's cheap drift check. */
  get revisionCommand(): string {
    return `${this.p}registry.cmd.revision`;
  }

  /** Request/reply: the prober's health verdict for one instance (registry-api is the writer). */
  get reportHealthCommand(): string {
    return `${this.p}registry.cmd.reportHealth`;
  }

  /** Request/reply: deregister an instance (pruning). */
  get deregisterCommand(): string {
    return `${this.p}registry.cmd.deregister`;
  }

  /** Request/reply: the prober runs a round of checks now and answers with a summary. */
  get proberRunChecksCommand(): string {
    return `${this.p}prober.cmd.runChecks`;
  }

  /** Queue group shared by the replicas of one app, so each message is handled once. */
  queueGroup(app: string): string {
    return `${this.p}${app}`;
  }
}
