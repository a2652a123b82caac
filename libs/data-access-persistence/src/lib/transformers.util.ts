import { ValueTransformer } from 'typeorm';

/** PostgreSQL bigint arrives as a string; revisions stay far below 2^53, so a number is exact. */
export const bigintToNumber: ValueTransformer = {
  to: (value?: number | null) => value,
  from: (value?: string | null) => (value === null || value === undefined ? value : Number(value)),
};
