import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { ADMIN_STATES, AdminState, ENVIRONMENTS, HEALTH_STATUSES, HealthStatus } from './status';
import { SUBJECT_TOKEN_PATTERN } from './subjects';
import { HealthCheckSettingsDto } from './health-check.dto';
import { PageQueryDto } from './page-query.dto';
import { IsHostOrIp, IsOneOf, IsSingleLine, MaxJsonBytes } from './validators.util';

export const METADATA_MAX_BYTES = 16 * 1024;

/**
 * `healthCheckEndpoint`: the prober appends it to `http://host:port`, so it must stay a path of
 * that authority whatever a URL parser makes of it: one "/" first (never "//host"), URL path and
 * query characters only (no "\\", which parsers read as "/", no "@", no "#"), and no ".."
 * segment, plain or percent-encoded.
 */
export const HEALTH_CHECK_PATH_PATTERN = /^(?!.*(?:^|\/)(?:\.|%2e){2}(?:[/?]|$))\/(?![/])[A-Za-z0-9\-._~!$&'()*+,;=:%/?]{0,511}$/i;

const SUBJECT_SAFE = 'must be 1-128 characters of letters, digits, "_" or "-"';

export class RequiredEnvironmentVarDto {
  @ApiProperty({ example: 'OPENAI_API_KEY' })
  @IsString()
  @Matches(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { message: 'name must be an environment variable name' })
  name!: string;

  @ApiProperty({ example: 'secret' })
  @IsString()
  @MaxLength(32)
  @IsSingleLine()
  type!: string;

  @ApiProperty()
  @IsBoolean()
  required!: boolean;
}

/** `POST /api/v2/services/registry/register`: the reference guide's schema, plus `models`, `namespace`, `status`. */
export class RegisterServiceDto {
  @ApiProperty({ example: 'mech-llms' })
  @IsString()
  @Matches(SUBJECT_TOKEN_PATTERN, { message: `serviceName ${SUBJECT_SAFE}` })
  serviceName!: string;

  @ApiProperty({ example: 'mech-llms-prod-1736958000' })
  @IsString()
  @Matches(SUBJECT_TOKEN_PATTERN, { message: `serviceId ${SUBJECT_SAFE}` })
  serviceId!: string;

  @ApiProperty({ example: '174.138.68.108', description: 'IP address or hostname' })
  @IsHostOrIp()
  vmIp!: string;

  @ApiProperty({ example: 3008 })
  @IsInt()
  @Min(1)
  @Max(65535)
  internalPort!: number;

  @ApiProperty({ example: 'llm.mechdna.net' })
  @IsHostOrIp({ message: 'externalDomain must be a hostname' })
  externalDomain!: string;

  @ApiProperty({ example: '1.2.0' })
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  @IsSingleLine()
  version!: string;

  @ApiProperty({ example: 'manual-registration' })
  @IsString()
  @MinLength(1)
  @MaxLength(128)
  @IsSingleLine()
  deploymentId!: string;

  @ApiProperty({ enum: ENVIRONMENTS })
  @IsOneOf(ENVIRONMENTS)
  environment!: string;

  @ApiProperty({ example: 'nyc1' })
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  @IsSingleLine()
  region!: string;

  @ApiPropertyOptional({ type: [String], example: ['llm', 'streaming'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  @IsSingleLine({ each: true })
  capabilities?: string[];

  @ApiPropertyOptional({ type: [String], description: 'Models this instance serves (OpenAI `model` names)', example: ['llama-2-7b'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  @MaxLength(256, { each: true })
  @IsSingleLine({ each: true })
  models?: string[];

  @ApiPropertyOptional({ example: 'system' })
  @IsOptional()
  @Matches(SUBJECT_TOKEN_PATTERN, { message: `namespace ${SUBJECT_SAFE}` })
  namespace?: string;

  @ApiPropertyOptional({ example: '/health', default: '/health' })
  @IsOptional()
  @IsString()
  @Matches(HEALTH_CHECK_PATH_PATTERN, { message: 'healthCheckEndpoint must be a plain path: "/" then URL path characters, not "//", "\\", "@" or ".." segments' })
  healthCheckEndpoint?: string;

  @ApiPropertyOptional({ type: HealthCheckSettingsDto, description: "Overrides of the prober's check settings" })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => HealthCheckSettingsDto)
  healthCheck?: HealthCheckSettingsDto;

  @ApiPropertyOptional({ enum: HEALTH_STATUSES, default: 'healthy', description: 'Initial health; the prober corrects it' })
  @IsOptional()
  @IsOneOf(HEALTH_STATUSES)
  status?: HealthStatus;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @MaxJsonBytes(METADATA_MAX_BYTES)
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({ type: [RequiredEnvironmentVarDto] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @ValidateNested({ each: true })
  @Type(() => RequiredEnvironmentVarDto)
  requiredEnvironmentVars?: RequiredEnvironmentVarDto[];
}

/** Bounds that no real figure reaches; beyond them a value is a mistake or an attack, not load. */
export const LOAD_MAX = 1e12;
export const INFLIGHT_MAX = 1e9;

/** Absent is fine; null is not (it would be merged into the stored load figures as null). */
function givenOrNull(_: object, value: unknown): boolean {
  return value !== undefined;
}

/** Load figures a heartbeat carries; the router's balancer and the prober read them. */
export class LoadFiguresDto {
  @ApiPropertyOptional({ example: 45 })
  @ValidateIf(givenOrNull)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(LOAD_MAX)
  requestsPerMinute?: number;

  @ApiPropertyOptional({ example: 250, description: 'milliseconds' })
  @ValidateIf(givenOrNull)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(LOAD_MAX)
  averageLatency?: number;

  @ApiPropertyOptional({ example: 0.01, description: 'fraction 0..1' })
  @ValidateIf(givenOrNull)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1)
  errorRate?: number;

  @ApiPropertyOptional({ example: 3, description: 'requests in flight' })
  @ValidateIf(givenOrNull)
  @IsInt()
  @Min(0)
  @Max(INFLIGHT_MAX)
  inflight?: number;
}

/** Heartbeat body over REST, and the payload on `registry.heartbeat.<env>.<service>.<serviceId>`. */
export class HeartbeatDto {
  @ApiPropertyOptional({ type: LoadFiguresDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LoadFiguresDto)
  metadata?: LoadFiguresDto;
}

export class UpdateStatusDto {
  @ApiPropertyOptional({ enum: HEALTH_STATUSES })
  @IsOptional()
  @IsOneOf(HEALTH_STATUSES)
  status?: HealthStatus;

  @ApiPropertyOptional({ enum: ADMIN_STATES })
  @IsOptional()
  @IsOneOf(ADMIN_STATES)
  adminState?: AdminState;

  @ApiPropertyOptional({ example: 'manual override' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  reason?: string;
}

export class ListServicesQueryDto extends PageQueryDto {
  @ApiPropertyOptional()
  @IsOptional()
  @Matches(SUBJECT_TOKEN_PATTERN, { message: `serviceName ${SUBJECT_SAFE}` })
  serviceName?: string;

  @ApiPropertyOptional({ enum: ENVIRONMENTS })
  @IsOptional()
  @IsOneOf(ENVIRONMENTS)
  environment?: string;

  @ApiPropertyOptional({ enum: HEALTH_STATUSES })
  @IsOptional()
  @IsOneOf(HEALTH_STATUSES)
  status?: HealthStatus;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(64)
  @IsSingleLine()
  capability?: string;
}

export class DiscoverQueryDto {
  @ApiPropertyOptional({ enum: ENVIRONMENTS })
  @IsOptional()
  @IsOneOf(ENVIRONMENTS)
  environment?: string;
}

export type HealthCheckSettings = Partial<Pick<HealthCheckSettingsDto, keyof HealthCheckSettingsDto>>;

export interface LoadFigures {
  requestsPerMinute?: number;
  averageLatency?: number;
  errorRate?: number;
  inflight?: number;
}

/** An instance as every API, event and snapshot shows it. */
export interface ServiceInstanceView {
  serviceId: string;
  serviceName: string;
  environment: string;
  region: string;
  vmIp: string;
  internalPort: number;
  externalDomain: string | null;
  internalUrl: string;
  externalUrl: string | null;
  version: string;
  deploymentId: string;
  namespace: string | null;
  capabilities: string[];
  models: string[];
  healthCheckEndpoint: string;
  healthCheck: HealthCheckSettings;
  metadata: Record<string, unknown>;
  requiredEnvironmentVars: { name: string; type: string; required: boolean }[];
  status: HealthStatus;
  adminState: AdminState;
  routable: boolean;
  load: LoadFigures;
  lastSeen: string | null;
  registeredAt: string;
  updatedAt: string;
  revision: number;
}

export interface RegistrySnapshot {
  /** Highest revision the snapshot includes, tombstones counted. */
  revision: number;
  instances: ServiceInstanceView[];
  /**
   * `[serviceId, revision]` of each deregistration the registry still remembers (its tombstones), so a
   * consumer can tell a late, older event of a deleted instance from a new registration. Spread over
   * the chunks; absent from answers of registries older than this field.
   */
  tombstones?: [string, number][];
}
