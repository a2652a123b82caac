// @nestjs/swagger and nestjs-pino inside the @switchboard/client bundle: the shared DTOs carry OpenAPI
// decorators and the shared observability lib a pino logger module, neither of which a client uses.
// Every export is a no-op decorator (or an inert module); nothing here runs at request time.
'use strict';
const inert = () => () => undefined;
module.exports = new Proxy({}, { get: (_target, name) => (name === '__esModule' ? false : name === 'LoggerModule' ? { forRoot: () => ({}) } : inert) });
