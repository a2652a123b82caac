// @nestjs/common inside the @switchboard/client bundle. The SDK's internal libs are shared with the
// NestJS apps of the monorepo: their decorators (Module, Injectable, Controller, …) mean nothing to a
// plain Node caller, so each is a no-op here, and Logger writes through the SDK's log sink
// (by default warnings and errors to stderr). `@switchboard/client/nest` uses the application's real
// @nestjs/common instead. build.mjs fails if the bundle uses a name this file does not export.
'use strict';
const sink = {
  current: {
    log: () => undefined,
    warn: (message) => process.stderr.write(`${message}\n`),
    error: (message) => process.stderr.write(`${message}\n`),
  },
};
class Logger {
  constructor(context) {
    this.context = context;
  }
  log(message) {
    sink.current.log(`[${this.context}] ${message}`);
  }
  warn(message) {
    sink.current.warn(`[${this.context}] ${message}`);
  }
  error(message) {
    sink.current.error(`[${this.context}] ${message}`);
  }
  debug() {}
  verbose() {}
}
const decorator = () => () => undefined;
const DECORATORS = [
  'Body', 'Catch', 'Controller', 'Delete', 'Get', 'Global', 'Head', 'Header', 'HttpCode', 'Inject', 'Injectable', 'Module',
  'Optional', 'Param', 'Patch', 'Post', 'Put', 'Query', 'Req', 'Res', 'SetMetadata', 'UseFilters', 'UseGuards', 'UseInterceptors', 'UsePipes',
];
module.exports = { Logger, switchboardLogSink: sink };
for (const name of DECORATORS) module.exports[name] = decorator;
