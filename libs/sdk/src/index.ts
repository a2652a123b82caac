// @switchboard/client: join Switchboard (service side) and call by name from its pushed routing table (client side).
import 'reflect-metadata';

export { resolveConnection, useLogger } from './lib/options';
export type { ResolvedConnection, SwitchboardConnectionOptions, SwitchboardLogger } from './lib/options';
export { BadRequestError, NoInstanceError, RetriesExhaustedError, StreamCutError, SwitchboardError } from './lib/errors';
export type { AttemptFailureReason, RequestAttempt } from './lib/errors';
export { SwitchboardClient } from './lib/client/switchboard-client';
export type { InstanceLoad, ParallelOptions, ParallelResult, RequestOptions, SwitchboardClientOptions, SwitchboardInstance } from './lib/client/types';
export * from './lib/service';
