import { SwitchboardError } from '../errors';

/** One field the registry (or the SDK before sending) refused, and why. */
export interface RegistrationFieldError {
  field: string;
  reason: string;
}

/**
 * The registration is wrong and retrying will not help: options refused before sending (`status`
 * undefined), or registry-api answered 4xx other than 429 (bad field, missing or wrong token), with its
 * message. Unreachable registries and 5xx/429 answers are retried instead, never thrown.
 */
export class RegistrationError extends SwitchboardError {
  override name = 'RegistrationError';
  constructor(
    message: string,
    /** registry-api's HTTP status; undefined when the SDK refused the options itself. */
    readonly status?: number,
    readonly errors: readonly RegistrationFieldError[] = [],
  ) {
    super(message);
  }
}
