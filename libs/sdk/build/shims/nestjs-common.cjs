// @nestjs/common inside the @switchboard/client bundle. The SDK's internal libs are shared with the
// NestJS apps of the monorepo: their decorators (Module, Injectable, Controller, …) mean nothing to a
// plain Node caller, so each is a no-op here, and Logger writes through the sink the SDK was given
// (setSdkLogSink), by default warnings and errors to stderr. `@switchboard/client/nest` uses the real
// @nestjs/common of the application instead.
'use strict';
const sink = { current: { log: () => undefined, warn: (m) => process.stderr.write(`${m}\n`), error: (m) => process.stderr.write(`${m}\n`) } };
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
module.exports = new Proxy(
  { Logger, __switchboardLogSink: sink },
  { get: (target, name) => (name in target ? target[name] : typeof name === 'string' && /^[A-Z]/.test(name) ? decorator : undefined) },
);
