export * from './lib/routing-table.service';
