import { Body, Controller, Get, HttpCode, Post, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ENVIRONMENTS, ListModelsQueryDto, ModelSelectorDto, RegisterModelDto } from '@switchboard/contracts';
import { RequireToken } from '../auth/token.guard';
import { RegistryQueries } from '../queries/registry-queries.service';
import { DiscoveryService } from '../registry/discovery.service';
import { ModelLookupQuery, ModelLookupQueryPipe } from '../registry/query-params.util';
import { Traceparent } from '../registry/traceparent.util';
import { ModelRegistryService } from './model-registry.service';

/**
 * The model view of the same registry (the vLLM model workflow): a model deployment is an
 * instance whose `models` names what it serves, so the router reads one table.
 */
@ApiTags('models')
@Controller('api/v2/services/registry/models')
@RequireToken('read')
@ApiSecurity('read-token')
export class ModelsController {
  constructor(
    private readonly models: ModelRegistryService,
    private readonly queries: RegistryQueries,
    private readonly discovery: DiscoveryService,
  ) {}

  @Post()
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  @ApiOperation({ summary: 'Register a model deployment (endpoint defaults to {model}-{env}.{namespace}.svc.cluster.local:8000)' })
  async register(@Body() dto: RegisterModelDto, @Traceparent() trace: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const result = await this.models.register(dto, trace);
    void reply.status(result.created && !result.dryRun ? 201 : 200);
    return { success: true, ...result };
  }

  // Before any parameterised route, so `lookup` is never taken for a parameter.
  @Get('lookup')
  @ApiOperation({ summary: "The deployments of one model in one environment, any status (the model workflow's lookup; from the Redis cache)" })
  @ApiQuery({ name: 'environment', enum: ENVIRONMENTS })
  @ApiQuery({ name: 'model', example: 'llama-2-7b' })
  async lookup(@Query(ModelLookupQueryPipe) query: ModelLookupQuery) {
    const models = await this.discovery.lookupModel(query.model, query.environment);
    return { success: true, count: models.length, models };
  }

  @Get()
  @ApiOperation({ summary: 'List model deployments (filters: environment, status, model), a page of `limit` rows at a time (default 100, at most 1000); pass `nextCursor` back as `cursor`' })
  async list(@Query() query: ListModelsQueryDto) {
    const page = await this.queries.listModels(query);
    return { success: true, count: page.items.length, nextCursor: page.nextCursor, models: page.items };
  }

  @Post('enable')
  @HttpCode(200)
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  async enable(@Body() dto: ModelSelectorDto, @Traceparent() trace: string) {
    return { success: true, models: await this.models.setAdminState(dto.modelName, dto.environment, 'enabled', trace) };
  }

  @Post('disable')
  @HttpCode(200)
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  async disable(@Body() dto: ModelSelectorDto, @Traceparent() trace: string) {
    return { success: true, models: await this.models.setAdminState(dto.modelName, dto.environment, 'disabled', trace) };
  }

  @Post('deregister')
  @HttpCode(200)
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  @ApiOperation({ summary: 'Remove every deployment of the model in the environment (deregistered events, tombstones)' })
  async deregister(@Body() dto: ModelSelectorDto, @Traceparent() trace: string) {
    return { success: true, deregistered: await this.models.deregister(dto.modelName, dto.environment, trace) };
  }
}
