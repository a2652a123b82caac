import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { NatsClient } from '@switchboard/messaging';
import { Public } from '@switchboard/observability';
import { RoutingTable } from '@switchboard/routing-table';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { DrainService } from '../proxy/drain.service';

/**
 * Ready when NATS is connected (the table stays fresh) and the router is not shutting down (a load
 * balancer stops sending while it drains); reports the table's size and revision.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly nats: NatsClient,
    private readonly table: RoutingTable,
    private readonly policies: RoutingPolicyService,
    private readonly drain: DrainService,
  ) {}

  @Get()
  @Public()
  check(@Res({ passthrough: true }) reply: FastifyReply) {
    const natsUp = this.nats.isConnected;
    const draining = this.drain.draining;
    void reply.status(natsUp && !draining ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: draining ? 'draining' : natsUp ? 'ok' : 'error',
      nats: natsUp ? 'up' : 'down',
      // With ROUTER_WORKERS > 1 each worker answers for itself: which one this is.
      pid: process.pid,
      table: { instances: this.table.size, revision: this.table.revision, ...this.table.stats },
      policy: { loads: this.policies.loads, sha256: this.policies.digest },
    };
  }
}
