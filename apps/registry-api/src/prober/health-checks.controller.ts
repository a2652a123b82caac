import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RequireToken } from '../auth/token.guard';
import { ProberClient } from './prober-client.service';

@ApiTags('registry')
@Controller('api/v2/services/registry')
export class HealthChecksController {
  constructor(private readonly prober: ProberClient) {}

  @Post('health-checks')
  @HttpCode(200)
  @RequireToken('admin')
  @ApiSecurity('admin-token')
  @ApiOperation({ summary: 'Run a round of health checks now (answered by health-prober)' })
  async runHealthChecks() {
    return { success: true, summary: await this.prober.runHealthChecks() };
  }
}
