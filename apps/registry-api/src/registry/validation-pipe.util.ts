import { ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import { flattenValidationErrors, untrustedInputErrors, VALIDATION_OPTIONS } from '@switchboard/contracts';
import { RegistryException } from './registry.exception';

/**
 * The global pipe: first the untrusted-input walk over the raw body, query or path parameter (no
 * U+0000 or other control characters, lone surrogates, non-finite numbers, prototype keys, deep
 * nesting or huge arrays reach a DTO or PostgreSQL), then class-validator with the contracts DTOs.
 * Parameters read by a pipe of their own (the remembered query pipes) are walked here too.
 */
export class RegistryValidationPipe extends ValidationPipe {
  constructor() {
    super({
      ...VALIDATION_OPTIONS,
      transform: true,
      exceptionFactory: (errors) => RegistryException.validation(flattenValidationErrors(errors)),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    // Nest would read a JSON `null` body as `{}`: a body, when sent, must be an object.
    if (metadata.type === 'body' && (value === null || typeof value !== 'object' || Array.isArray(value)) && value !== undefined) {
      throw RegistryException.validation([{ field: '(body)', reason: '(body) must be a JSON object' }]);
    }
    if (metadata.type !== 'custom') {
      const root = metadata.data ?? '';
      const errors = untrustedInputErrors(value, root, undefined, root || `(${metadata.type})`);
      if (errors.length) throw RegistryException.validation(errors);
    }
    return super.transform(value, metadata);
  }
}
