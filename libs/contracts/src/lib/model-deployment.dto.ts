import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, Matches } from 'class-validator';
import { PageQueryDto } from './page-query.dto';
import { AdminState, ENVIRONMENTS, HealthStatus, MODEL_STATUSES, ModelStatus } from './status';
import { SUBJECT_TOKEN_PATTERN } from './subjects';
import { IsOneOf } from './validators.util';

/** OpenAI-style model names: `llama-2-7b`, `meta-llama/Llama-3-8B`, `qwen2.5:7b`. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,255}$/;
const MODEL_NAME_RULE = 'modelName must be 1-256 characters: letters, digits and . _ : / @ + -, starting with a letter or digit';
/** `host:port`, host being a DNS name or IPv4 (IPv6 as `[addr]:port`). */
export const ENDPOINT_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$/;
export const DEFAULT_MODEL_NAMESPACE = 'system';
export const DEFAULT_MODEL_PORT = 8000;

/** The naming convention of the model workflow: `{model}-{env}.{namespace}.svc.cluster.local:8000`. */
export function defaultModelEndpoint(modelName: string, environment: string, namespace: string): string {
  const host = modelName.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return `${host}-${environment}.${namespace}.svc.cluster.local:${DEFAULT_MODEL_PORT}`;
}

export class RegisterModelDto {
  @ApiProperty({ example: 'llama-2-7b' })
  @IsString()
  @Matches(MODEL_NAME_PATTERN, { message: MODEL_NAME_RULE })
  modelName!: string;

  @ApiPropertyOptional({
    example: 'llama-2-7b-development.system.svc.cluster.local:8000',
    description: 'host:port; defaults to {model}-{env}.{namespace}.svc.cluster.local:8000',
  })
  @IsOptional()
  @Matches(ENDPOINT_PATTERN, { message: 'endpoint must be host:port (e.g. llama-2-7b-development.system.svc.cluster.local:8000)' })
  endpoint?: string;

  @ApiProperty({ enum: ENVIRONMENTS })
  @IsOneOf(ENVIRONMENTS)
  environment!: string;

  @ApiPropertyOptional({ default: DEFAULT_MODEL_NAMESPACE })
  @IsOptional()
  @Matches(SUBJECT_TOKEN_PATTERN, { message: 'namespace must be 1-128 characters of letters, digits, "_" or "-"' })
  namespace?: string;

  @ApiPropertyOptional({ description: 'Validate and show what would be registered, without writing' })
  @IsOptional()
  @IsBoolean()
  dryRun?: boolean;
}

/** Selects the deployments of one model in one environment (enable, disable, deregister). */
export class ModelSelectorDto {
  @ApiProperty({ example: 'llama-2-7b' })
  @IsString()
  @Matches(MODEL_NAME_PATTERN, { message: MODEL_NAME_RULE })
  modelName!: string;

  @ApiProperty({ enum: ENVIRONMENTS })
  @IsOneOf(ENVIRONMENTS)
  environment!: string;
}

export class ListModelsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: ENVIRONMENTS })
  @IsOptional()
  @IsOneOf(ENVIRONMENTS)
  environment?: string;

  @ApiPropertyOptional({ enum: MODEL_STATUSES })
  @IsOptional()
  @IsOneOf(MODEL_STATUSES)
  status?: ModelStatus;

  @ApiPropertyOptional({ description: 'model name' })
  @IsOptional()
  @Matches(MODEL_NAME_PATTERN, { message: MODEL_NAME_RULE.replace('modelName', 'model') })
  model?: string;
}

/** The model workflow's lookup: the deployments of one model in one environment (served from the cache). */
export class ModelLookupQueryDto {
  @ApiProperty({ enum: ENVIRONMENTS })
  @IsOneOf(ENVIRONMENTS)
  environment!: string;

  @ApiProperty({ example: 'llama-2-7b' })
  @IsString()
  @Matches(MODEL_NAME_PATTERN, { message: MODEL_NAME_RULE.replace('modelName', 'model') })
  model!: string;
}

/** One row of the model view: a deployment serving a model. */
export interface ModelDeploymentView {
  serviceId: string;
  modelName: string;
  endpoint: string;
  environment: string;
  namespace: string | null;
  status: ModelStatus;
  health: HealthStatus;
  adminState: AdminState;
  lastSeen: string | null;
  registeredAt: string;
  updatedAt: string;
  revision: number;
}
