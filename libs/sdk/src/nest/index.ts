// @switchboard/client/nest: SwitchboardModule for NestJS applications (built against the app's own @nestjs/common).
export {};
