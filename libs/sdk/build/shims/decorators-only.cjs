// @nestjs/swagger and nestjs-pino inside the @switchboard/client bundle: the shared DTOs carry OpenAPI
// decorators and the shared observability lib a pino logger module, neither of which a client uses.
// Every export is a no-op decorator or an inert module. build.mjs fails if the bundle uses a name this
// file does not export.
'use strict';
const decorator = () => () => undefined;
module.exports = {
  ApiProperty: decorator,
  ApiPropertyOptional: decorator,
  ApiExcludeController: decorator,
  ApiHideProperty: decorator,
  ApiTags: decorator,
  LoggerModule: { forRoot: () => ({}) },
};
