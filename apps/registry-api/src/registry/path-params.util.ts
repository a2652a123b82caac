import { Injectable, PipeTransform } from '@nestjs/common';
import { SUBJECT_TOKEN_PATTERN } from '@switchboard/contracts';
import { RegistryException } from './registry.exception';

function subjectToken(field: string) {
  @Injectable()
  class SubjectTokenPipe implements PipeTransform<string, string> {
    transform(value: string): string {
      if (!SUBJECT_TOKEN_PATTERN.test(value)) {
        throw RegistryException.validation([{ field, reason: `${field} must be 1-128 characters of letters, digits, "_" or "-"` }]);
      }
      return value;
    }
  }
  return SubjectTokenPipe;
}

export const ServiceIdPipe = subjectToken('serviceId');
export const ServiceNamePipe = subjectToken('serviceName');
