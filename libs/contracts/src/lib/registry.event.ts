import { Type } from 'class-transformer';
import {
  Equals,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Min,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { plainToInstance } from 'class-transformer';
import { ADMIN_STATES, AdminState, HEALTH_STATUSES, HealthStatus } from './status';
import type { ServiceInstanceView } from './service-instance.dto';
import { REGISTRY_EVENT_SOURCE, REGISTRY_EVENT_TYPES, RegistryEventKind, SUBJECT_TOKEN_PATTERN } from './subjects';
import { untrustedInputErrors } from './untrusted-input.util';
import { FieldError, flattenValidationErrors } from './validation.util';
import { IsOneOf } from './validators.util';

/**
 * The fields a consumer relies on, checked on receipt. Unknown fields are tolerated, so a newer
 * producer can add fields without breaking older consumers.
 */
export class InstancePayload implements Pick<ServiceInstanceView, 'serviceId' | 'serviceName' | 'environment' | 'status' | 'adminState' | 'models' | 'internalUrl' | 'revision'> {
  @Matches(SUBJECT_TOKEN_PATTERN) serviceId!: string;
  @Matches(SUBJECT_TOKEN_PATTERN) serviceName!: string;
  @Matches(SUBJECT_TOKEN_PATTERN) environment!: string;
  @IsOneOf(HEALTH_STATUSES) status!: HealthStatus;
  @IsOneOf(ADMIN_STATES) adminState!: AdminState;
  @IsArray() @IsString({ each: true }) models!: string[];
  @IsString() internalUrl!: string;
  @IsInt() @Min(1) revision!: number;
}

export class StateDto {
  @IsOneOf(HEALTH_STATUSES) status!: HealthStatus;
  @IsOneOf(ADMIN_STATES) adminState!: AdminState;
}

/**
 * Where a re-registered instance was before, when the re-registration moved it (service name,
 * environment or models changed): consumers that index by those (the discovery cache) must also
 * forget the old place.
 */
export class PreviousPlacement {
  @Matches(SUBJECT_TOKEN_PATTERN) serviceName!: string;
  @Matches(SUBJECT_TOKEN_PATTERN) environment!: string;
  @IsArray() @IsString({ each: true }) models!: string[];
}

export class RegisteredEventData {
  @IsInt() @Min(1) revision!: number;
  @IsObject() @ValidateNested() @Type(() => InstancePayload) instance!: InstancePayload & ServiceInstanceView;
  /** Only when the re-registration moved the instance; absent for a new one or an in-place update. */
  @IsOptional() @IsObject() @ValidateNested() @Type(() => PreviousPlacement) previous?: PreviousPlacement;
}

export class StatusChangedEventData {
  @IsInt() @Min(1) revision!: number;
  @IsObject() @ValidateNested() @Type(() => InstancePayload) instance!: InstancePayload & ServiceInstanceView;
  @IsObject() @ValidateNested() @Type(() => StateDto) from!: StateDto;
  @IsObject() @ValidateNested() @Type(() => StateDto) to!: StateDto;
  @IsOptional() @IsString() reason?: string;
}

export class DeregisteredEventData {
  @IsInt() @Min(1) revision!: number;
  @Matches(SUBJECT_TOKEN_PATTERN) serviceId!: string;
  @Matches(SUBJECT_TOKEN_PATTERN) serviceName!: string;
  @Matches(SUBJECT_TOKEN_PATTERN) environment!: string;
  /** The models it served, so model-keyed consumers know what to forget (absent in events of older producers). */
  @IsOptional() @IsArray() @IsString({ each: true }) models?: string[];
}

export interface RegistryEventDataByKind {
  registered: RegisteredEventData;
  statusChanged: StatusChangedEventData;
  deregistered: DeregisteredEventData;
}

const DATA_CLASSES: { [K in RegistryEventKind]: new () => RegistryEventDataByKind[K] } = {
  registered: RegisteredEventData,
  statusChanged: StatusChangedEventData,
  deregistered: DeregisteredEventData,
};

/** CloudEvents 1.0, structured JSON mode. `id` is the revision, `subject` the serviceId. */
export class CloudEventEnvelope {
  @Equals('1.0') specversion!: '1.0';
  @IsString() id!: string;
  @IsString() source!: string;
  @IsIn(Object.values(REGISTRY_EVENT_TYPES)) type!: string;
  @IsISO8601() time!: string;
  @IsString() subject!: string;
  @IsOptional() @IsString() datacontenttype?: string;
  @IsObject() data!: object;
}

export interface RegistryCloudEvent<K extends RegistryEventKind = RegistryEventKind> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject: string;
  datacontenttype: 'application/json';
  data: RegistryEventDataByKind[K];
}

export function buildRegistryEvent<K extends RegistryEventKind>(
  kind: K,
  subject: string,
  data: RegistryEventDataByKind[K],
  time: Date,
): RegistryCloudEvent<K> {
  return {
    specversion: '1.0',
    id: String(data.revision),
    source: REGISTRY_EVENT_SOURCE,
    type: REGISTRY_EVENT_TYPES[kind],
    time: time.toISOString(),
    subject,
    datacontenttype: 'application/json',
    data,
  };
}

export type ParsedRegistryEvent =
  | { [K in RegistryEventKind]: { kind: K; event: RegistryCloudEvent<K> } }[RegistryEventKind];

const KIND_BY_TYPE = new Map(Object.entries(REGISTRY_EVENT_TYPES).map(([kind, type]) => [type, kind as RegistryEventKind]));

/** Parses and validates a registry event as received from NATS. Throws with field errors when it is not one. */
export function parseRegistryEvent(json: unknown): ParsedRegistryEvent {
  const unsafe = untrustedInputErrors(json);
  if (unsafe.length) throw new InvalidEventError(unsafe);
  const envelope = plainToInstance(CloudEventEnvelope, json);
  let errors: FieldError[] = flattenValidationErrors(validateSync(envelope));
  if (!errors.length) {
    const kind = KIND_BY_TYPE.get(envelope.type) as RegistryEventKind;
    const data = plainToInstance(DATA_CLASSES[kind] as new () => object, envelope.data);
    errors = flattenValidationErrors(validateSync(data), 'data');
    if (!errors.length) {
      return { kind, event: { ...(json as RegistryCloudEvent), data } } as ParsedRegistryEvent;
    }
  }
  throw new InvalidEventError(errors);
}

export class InvalidEventError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(`invalid registry event: ${errors.map((e) => `${e.field}: ${e.reason}`).join('; ')}`);
  }
}
