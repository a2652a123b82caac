// @switchboard/client: join Switchboard (service side) and call by name from its pushed routing table (client side).
import 'reflect-metadata';

export { resolveConnection, useLogger } from './lib/options';
export type { ResolvedConnection, SwitchboardConnectionOptions, SwitchboardLogger } from './lib/options';
