import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { UNTRUSTED_INPUT_LIMITS, untrustedInputErrors, UntrustedInputLimits } from './untrusted-input.util';

export interface FieldError {
  field: string;
  reason: string;
}

/** Flattens class-validator's tree into `{ field, reason }` pairs, with dotted paths for nested fields. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const reasons = Object.values(error.constraints ?? {});
    if (error.value === undefined || error.value === null) {
      // One clear reason for a missing field instead of every rule it would also break.
      if (reasons.length) out.push({ field, reason: `${field} is required` });
    } else {
      // Several rules may share one message (limit: integer, min, max); say it once.
      for (const reason of new Set(reasons)) out.push({ field, reason });
    }
    if (error.children?.length) out.push(...flattenValidationErrors(error.children, field));
  }
  return out;
}

export const VALIDATION_OPTIONS = { whitelist: true, forbidNonWhitelisted: true } as const;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/**
 * Validates a plain payload (NATS message, config, CLI input) with the same DTO class and options
 * that the HTTP ValidationPipe uses, so every boundary applies the same checks: first the
 * untrusted-input walk (control characters, depth, size, types), then the DTO.
 */
export function parseWith<T extends object>(cls: new () => T, plain: unknown, limits: UntrustedInputLimits = UNTRUSTED_INPUT_LIMITS): ParseResult<T> {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    return { ok: false, errors: [{ field: '(body)', reason: 'must be a JSON object' }] };
  }
  const unsafe = untrustedInputErrors(plain, '', limits);
  if (unsafe.length) return { ok: false, errors: unsafe };
  const value = plainToInstance(cls, plain);
  const errors = validateSync(value, VALIDATION_OPTIONS);
  return errors.length ? { ok: false, errors: flattenValidationErrors(errors) } : { ok: true, value };
}
