import { DynamicModule, Module } from '@nestjs/common';
import { ObservabilityModule } from '@switchboard/observability';
import type { RegistryApiConfig } from './config/registry-api.config';
import { DatabaseModule } from './database/database.module';
import { MessagingModule } from './messaging/messaging.module';
import { REGISTRY_API_CONFIG } from './registry-api.tokens';
import { RegistryModule } from './registry/registry.module';

@Module({})
export class AppModule {
  static forRoot(config: RegistryApiConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [ObservabilityModule.forRoot({ app: 'registry-api', logLevel: config.LOG_LEVEL }), DatabaseModule, MessagingModule, RegistryModule],
      providers: [{ provide: REGISTRY_API_CONFIG, useValue: config }],
      exports: [REGISTRY_API_CONFIG],
    };
  }
}
