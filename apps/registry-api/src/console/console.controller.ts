import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequireToken } from '../auth/token.guard';
import { ConsoleFeedService } from './console-feed.service';

/**
 * The console's live feed as Server-Sent Events. Reads need the read token when the registry requires
 * one (TokenGuard, `X-Registry-Token`): the page reads it with `fetch`, which can send the header,
 * so the token never appears in a URL.
 */
@ApiExcludeController()
@Controller('console/api')
export class ConsoleController {
  constructor(@Inject(ConsoleFeedService) private readonly feed: ConsoleFeedService) {}

  @Get('events')
  @RequireToken('read')
  events(@Req() request: FastifyRequest, @Res() reply: FastifyReply): void {
    this.feed.admit();
    // From here on the stream is ours, not Fastify's.
    reply.hijack();
    this.feed.attach(request.raw, reply.raw);
  }
}
