import { QueryFailedError, QueryRunnerAlreadyReleasedError } from 'typeorm';
import { isDatabaseUnavailable } from './database-unavailable.util';

function pgError(code: string, message = 'x'): Error {
  return Object.assign(new Error(message), { code });
}

describe('isDatabaseUnavailable', () => {
  it('recognises a lost connection, a terminated backend, a restarting or read-only server, wrapped by TypeORM or not', () => {
    for (const error of [
      new Error('Connection terminated unexpectedly'),
      pgError('57P01', 'terminating connection due to administrator command'),
      pgError('57P03', 'the database system is starting up'),
      pgError('08006'),
      pgError('25006', 'cannot execute INSERT in a read-only transaction'),
      pgError('ECONNREFUSED'),
      new QueryFailedError('INSERT …', [], pgError('57P01')),
      new QueryRunnerAlreadyReleasedError(),
      new Error('timeout exceeded when trying to connect'),
      new Error('failed', { cause: pgError('ECONNRESET') }),
    ]) {
      expect([error.message, isDatabaseUnavailable(error)]).toEqual([error.message, true]);
    }
  });

  it('leaves statement errors and bugs alone', () => {
    for (const error of [pgError('23505', 'duplicate key'), pgError('22P02'), new QueryFailedError('SELECT', [], pgError('42P01')), new TypeError('x is undefined'), 'text', undefined]) {
      expect(isDatabaseUnavailable(error)).toBe(false);
    }
  });
});
