import { Logger } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { SubjectSpace } from '@switchboard/contracts';
import { CommandFailure, NatsController } from '@switchboard/messaging/nest';
import { ProberService, RoundQueueFullError } from './prober.service';

/** The pattern: an unprefixed subject (NatsCommandServer applies SUBJECT_PREFIX). */
const COMMANDS = new SubjectSpace();
const logger = new Logger('RunChecksHandler');

/**
 * A failed round is answered `{ error: { code, message } }`: `BUSY` when refused under a flood (counted
 * in prober_round_requests_total{outcome="shed"}, not logged), `ROUND_FAILED` otherwise. Neither is a
 * bad message: the body is never read.
 */
export function runChecksFailure(error: unknown): CommandFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RoundQueueFullError) return new CommandFailure({ error: { code: 'BUSY', message } });
  logger.error(`manual round failed: ${message}`);
  return new CommandFailure({ error: { code: 'ROUND_FAILED', message } });
}

/** `prober.cmd.runChecks` (behind `POST …/health-checks`): one replica of the queue group answers with the round's summary. */
@NatsController(runChecksFailure)
export class RunChecksHandler {
  constructor(private readonly prober: ProberService) {}

  @MessagePattern(COMMANDS.proberRunChecksCommand)
  runChecks(): Promise<unknown> {
    return this.prober.runRound();
  }
}
