import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiParam, ApiQuery, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ENVIRONMENTS, HeartbeatDto, ListServicesQueryDto, RegisterServiceDto, UpdateStatusDto } from '@switchboard/contracts';
import { RequireToken } from '../auth/token.guard';
import { RestHeartbeatService } from '../heartbeat/rest-heartbeat.service';
import { RegistryQueries } from '../queries/registry-queries.service';
import { DiscoveryService } from './discovery.service';
import { InstanceRegistryService } from './instance-registry.service';
import { ServiceIdPipe, ServiceNamePipe } from './path-params.util';
import { DiscoverQuery, DiscoverQueryPipe } from './query-params.util';
import { Traceparent } from './traceparent.util';

/** The REST API of the reference registry guide, at its paths and with its shapes. */
@ApiTags('registry')
@Controller('api/v2/services/registry')
@RequireToken('read')
@ApiSecurity('read-token')
export class RegistryController {
  constructor(
    private readonly registry: InstanceRegistryService,
    private readonly queries: RegistryQueries,
    private readonly heartbeats: RestHeartbeatService,
    private readonly discovery: DiscoveryService,
  ) {}

  @Post('register')
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  @ApiOperation({ summary: 'Register an instance (re-registering the same serviceId is an idempotent update)' })
  async register(@Body() dto: RegisterServiceDto, @Traceparent() trace: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const result = await this.registry.register(dto, trace);
    void reply.status(result.created ? 201 : 200);
    return { success: true, created: result.created, changed: result.changed, service: result.instance };
  }

  @Get('services')
  @ApiOperation({ summary: 'List instances (filters: serviceName, environment, status, capability), a page of `limit` at a time (default 100, at most 1000); pass `nextCursor` back as `cursor`' })
  async list(@Query() query: ListServicesQueryDto) {
    const page = await this.queries.list(query);
    return { success: true, count: page.items.length, nextCursor: page.nextCursor, services: page.items };
  }

  @Get('services/:serviceId')
  @ApiParam({ name: 'serviceId' })
  async get(@Param('serviceId', ServiceIdPipe) serviceId: string) {
    return { success: true, service: await this.queries.get(serviceId) };
  }

  @Get('discover/:serviceName')
  @ApiOperation({ summary: 'One routable instance: healthy before degraded, load spread round-robin (with environment: from the Redis cache)' })
  @ApiQuery({ name: 'environment', required: false, enum: ENVIRONMENTS })
  async discover(@Param('serviceName', ServiceNamePipe) serviceName: string, @Query(DiscoverQueryPipe) query: DiscoverQuery) {
    return { success: true, service: await this.discovery.discover(serviceName, query.environment) };
  }

  @Post(':serviceId/heartbeat')
  @HttpCode(200)
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  async heartbeat(@Param('serviceId', ServiceIdPipe) serviceId: string, @Body() dto: HeartbeatDto, @Traceparent() trace: string) {
    return { success: true, ...(await this.heartbeats.heartbeat(serviceId, dto, trace)) };
  }

  @Put(':serviceId/status')
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  @ApiOperation({ summary: 'Set health (healthy, degraded, unhealthy, offline) and/or admin state (enabled, disabled, draining)' })
  async updateStatus(@Param('serviceId', ServiceIdPipe) serviceId: string, @Body() dto: UpdateStatusDto, @Traceparent() trace: string) {
    const result = await this.registry.updateStatus(serviceId, dto, trace);
    return { success: true, changed: result.changed, service: result.instance };
  }

  @Get('snapshot')
  @RequireToken('admin')
  @ApiSecurity('admin-token')
  @ApiOperation({ summary: 'Every instance plus the highest revision (also on NATS registry.cmd.snapshot)' })
  async snapshot() {
    return { success: true, ...(await this.queries.snapshot()) };
  }

  @Delete('services/:serviceId')
  @RequireToken('registry')
  @ApiSecurity('registry-token')
  @ApiHeader({ name: 'X-Registry-Token', required: true })
  async deregister(@Param('serviceId', ServiceIdPipe) serviceId: string, @Traceparent() trace: string) {
    return { success: true, ...(await this.registry.deregister(serviceId, trace)) };
  }
}
