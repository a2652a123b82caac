import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { NatsClient } from '@switchboard/messaging';
import { Public } from '@switchboard/observability';
import { RoutingTable } from '@switchboard/routing-table';
import { MembershipService } from '../membership/membership.service';

/** Ready when NATS is connected; shows the replica's id, its peers and the table it judges from. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly nats: NatsClient,
    private readonly table: RoutingTable,
    private readonly membership: MembershipService,
  ) {}

  @Get()
  @Public()
  check(@Res({ passthrough: true }) reply: FastifyReply) {
    const up = this.nats.isConnected;
    void reply.status(up ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: up ? 'ok' : 'error',
      nats: up ? 'up' : 'down',
      replica: this.membership.selfId,
      members: this.membership.members(),
      table: { instances: this.table.size, revision: this.table.revision },
    };
  }
}
