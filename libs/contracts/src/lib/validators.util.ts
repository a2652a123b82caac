import { IsIn, isFQDN, isIP, registerDecorator, ValidationArguments, ValidationOptions } from 'class-validator';

/**
 * A name that an HTTP client's URL parser reads as an IPv4 address (`0x7f000001`, `017700000001`):
 * refused as a hostname, so what is registered is what will be contacted.
 */
function readAsIpv4(name: string): boolean {
  try {
    return isIP(new URL(`http://${name}`).hostname, 4);
  } catch {
    return false;
  }
}

/** An IPv4/IPv6 address or a DNS hostname (single label allowed, e.g. `localhost` or a k8s service name). */
export function IsHostOrIp(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyKey) =>
    registerDecorator({
      name: 'isHostOrIp',
      target: target.constructor,
      propertyName: propertyKey as string,
      options,
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' &&
          value.length <= 253 &&
          (isIP(value) || (isFQDN(value, { require_tld: false, allow_underscores: false }) && !readAsIpv4(value))),
        defaultMessage: (args: ValidationArguments) => `${args.property} must be an IP address or a hostname`,
      },
    });
}

/** Caps the size of a free-form object by its JSON encoding, so one registration cannot bloat every snapshot. */
export function MaxJsonBytes(max: number, options?: ValidationOptions): PropertyDecorator {
  return (target, propertyKey) =>
    registerDecorator({
      name: 'maxJsonBytes',
      target: target.constructor,
      propertyName: propertyKey as string,
      constraints: [max],
      options,
      validator: {
        validate: (value: unknown) => {
          if (value === undefined) return true;
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          return Buffer.byteLength(JSON.stringify(value), 'utf8') <= max;
        },
        defaultMessage: (args: ValidationArguments) =>
          `${args.property} must be a JSON object of at most ${max} bytes`,
      },
    });
}

/**
 * A one-line string: no control character at all (tab, line feed and carriage return included),
 * for identifiers and labels that end up in logs, headers or metric labels.
 */
export function IsSingleLine(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyKey) =>
    registerDecorator({
      name: 'isSingleLine',
      target: target.constructor,
      propertyName: propertyKey as string,
      options,
      validator: {
        // eslint-disable-next-line no-control-regex
        validate: (value: unknown) => typeof value !== 'string' || !/[\u0000-\u001f\u007f]/.test(value),
        defaultMessage: (args: ValidationArguments) => `${args.property} must be one line without control characters`,
      },
    });
}

/** `@IsIn` for a readonly list of words, with one message shape: "<property> must be one of: a, b, c". */
export function IsOneOf(values: readonly string[], options?: ValidationOptions): PropertyDecorator {
  return IsIn(values, { message: `$property must be one of: ${values.join(', ')}`, ...options });
}
