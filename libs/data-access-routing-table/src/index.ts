export * from './lib/routing-table.service';
export * from './lib/routing-table.module';
export * from './lib/revision-guard.util';
export * from './lib/instance-scoreboard';
export * from './lib/snapshot-chunk.util';
