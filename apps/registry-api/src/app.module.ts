import { DynamicModule, Module, RequestMethod } from '@nestjs/common';
import { ObservabilityModule } from '@switchboard/observability';
import { DiscoveryCacheModule } from './cache/discovery-cache.module';
import { ConsoleModule } from './console/console.module';
import type { RegistryApiConfig } from './config/registry-api.config';
import { DatabaseModule } from './database/database.module';
import { MessagingModule } from './messaging/messaging.module';
import { REGISTRY_API_CONFIG } from './registry-api.tokens';
import { RegistryModule } from './registry/registry.module';

/** Polled by every client and served from Redis: counted in metrics, not logged per request. */
const DISCOVERY_READ_ROUTES = [
  { method: RequestMethod.GET, path: 'api/v2/services/registry/discover/:serviceName' },
  { method: RequestMethod.GET, path: 'api/v2/services/registry/models/lookup' },
];

@Module({})
export class AppModule {
  static forRoot(config: RegistryApiConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [
        ObservabilityModule.forRoot({ app: 'registry-api', logLevel: config.LOG_LEVEL, unloggedRoutes: DISCOVERY_READ_ROUTES }),
        DatabaseModule,
        MessagingModule,
        DiscoveryCacheModule,
        RegistryModule,
        ConsoleModule,
      ],
      providers: [{ provide: REGISTRY_API_CONFIG, useValue: config }],
      exports: [REGISTRY_API_CONFIG],
    };
  }
}
