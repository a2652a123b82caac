import { Injectable, PipeTransform } from '@nestjs/common';
import { DiscoverQueryDto, ModelLookupQueryDto, parseWith } from '@switchboard/contracts';
import { RegistryException } from './registry.exception';

const MAX_REMEMBERED = 256;

/**
 * Validates a query with its DTO, as the global ValidationPipe would (same options, same errors),
 * remembering the answers for query strings already seen. The cached read routes take the same few
 * queries thousands of times a second, and class-validator was a tenth of their CPU. Declare the
 * parameter with an interface type, so the global pipe (which skips plain objects) does not run too.
 */
function rememberedQuery<T extends object>(dto: new () => T) {
  @Injectable()
  class RememberedQueryPipe implements PipeTransform<Record<string, unknown>, T> {
    private readonly valid = new Map<string, T>();

    transform(query: Record<string, unknown>): T {
      const key = JSON.stringify(query);
      const known = this.valid.get(key);
      if (known) return known;
      const result = parseWith(dto, query ?? {});
      if (!result.ok) throw RegistryException.validation(result.errors);
      // Bounded: only valid queries are kept, and a flood of distinct ones just stops being remembered.
      if (this.valid.size < MAX_REMEMBERED) this.valid.set(key, Object.freeze(result.value));
      return result.value;
    }
  }
  return RememberedQueryPipe;
}

export const DiscoverQueryPipe = rememberedQuery(DiscoverQueryDto);
export const ModelLookupQueryPipe = rememberedQuery(ModelLookupQueryDto);

/** The shapes the pipes return (interfaces, so the global ValidationPipe leaves them alone). */
export type DiscoverQuery = Pick<DiscoverQueryDto, 'environment'>;
export type ModelLookupQuery = Pick<ModelLookupQueryDto, 'environment' | 'model'>;
