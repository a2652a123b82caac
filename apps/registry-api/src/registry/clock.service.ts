import { Injectable } from '@nestjs/common';

/** Time behind a seam, so use cases can be tested with a fixed clock. */
@Injectable()
export class ClockService {
  now(): Date {
    return new Date();
  }
}
