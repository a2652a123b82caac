import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { childTraceparent } from '@switchboard/messaging';

/** The W3C `traceparent` this request's events carry: a child of the caller's, or a new trace. */
export const Traceparent = createParamDecorator((_: unknown, ctx: ExecutionContext): string =>
  childTraceparent(ctx.switchToHttp().getRequest<FastifyRequest>().headers['traceparent']),
);
