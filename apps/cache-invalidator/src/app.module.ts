import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ObservabilityModule } from '@switchboard/observability';
import { CACHE_INVALIDATOR_CONFIG } from './cache-invalidator.tokens';
import type { CacheInvalidatorConfig } from './config/cache-invalidator.config';
import { HealthController } from './health/health.controller';
import { InvalidationModule } from './invalidation/invalidation.module';

@Module({})
export class AppModule {
  static forRoot(config: CacheInvalidatorConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [ObservabilityModule.forRoot({ app: 'cache-invalidator', logLevel: config.LOG_LEVEL }), TerminusModule.forRoot({ logger: false }), InvalidationModule],
      controllers: [HealthController],
      providers: [{ provide: CACHE_INVALIDATOR_CONFIG, useValue: config }],
      exports: [CACHE_INVALIDATOR_CONFIG],
    };
  }
}
