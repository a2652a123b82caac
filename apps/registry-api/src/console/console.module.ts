import { Module } from '@nestjs/common';
import { ConsoleController } from './console.controller';
import { ConsoleFeedService } from './console-feed.service';
import { ConsoleMetricsService } from './console-metrics.service';

/** The console's server side: the live feed and the metrics it carries (the page itself is static, see console-static.util). */
@Module({
  controllers: [ConsoleController],
  providers: [ConsoleFeedService, ConsoleMetricsService],
  exports: [ConsoleFeedService, ConsoleMetricsService],
})
export class ConsoleModule {}
