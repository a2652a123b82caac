import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

/** List pages: `limit` items (default 100, at most 1000), then `cursor` = the previous page's `nextCursor`. */
export const LIST_DEFAULT_LIMIT = 100;
export const LIST_MAX_LIMIT = 1000;
const LIMIT_RULE = `limit must be an integer from 1 to ${LIST_MAX_LIMIT}`;
/** Opaque to clients; its shape is checked here, its content (signed) by the API. */
export const CURSOR_PATTERN = /^[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{16,64}$/;

/** Query strings carry text: a plain decimal becomes a number, anything else stays text and fails @IsInt. */
export function integerFromQuery({ value }: { value: unknown }): unknown {
  return typeof value === 'string' && /^[0-9]{1,9}$/.test(value) ? Number(value) : value;
}

/** `limit` + `cursor`, shared by every list query. */
export class PageQueryDto {
  @ApiPropertyOptional({ description: `page size, 1-${LIST_MAX_LIMIT}`, default: LIST_DEFAULT_LIMIT })
  @IsOptional()
  @Transform(integerFromQuery)
  @IsInt({ message: LIMIT_RULE })
  @Min(1, { message: LIMIT_RULE })
  @Max(LIST_MAX_LIMIT, { message: LIMIT_RULE })
  limit?: number;

  @ApiPropertyOptional({ description: "the previous page's nextCursor" })
  @IsOptional()
  @IsString()
  @Matches(CURSOR_PATTERN, { message: 'cursor must be a nextCursor this API returned' })
  cursor?: string;
}
