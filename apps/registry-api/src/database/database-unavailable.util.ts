/**
 * SQLSTATEs that say the connection, not the statement, failed: class 08 (connection exception),
 * 57P01–57P03 (terminated by an administrator or a crash, server starting), 53300 (too many
 * connections), 25006 (read-only: connected to a standby, e.g. a failover not yet followed).
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300|25006)$/;
/** Socket errors of the driver reaching the server. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** node-postgres' own words when a connection ends under a query, or a pool connect times out. */
const DRIVER_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection/i;

/**
 * Whether a failed write failed because PostgreSQL was out of reach (connection lost mid-transaction,
 * server restarting or failing over), as opposed to a bug or a constraint. The transaction then either
 * rolled back whole, rows and outbox row together, or (connection lost while COMMIT was answered) committed
 * whole; either way nothing is half-written, and a retry is safe since every write is idempotent.
 * TypeORM wraps the driver's error (`driverError`); causes are followed a few levels deep.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const { code, message, name } = current as { code?: unknown; message?: unknown; name?: unknown };
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || NETWORK_CODES.has(code))) return true;
    // TypeORM releases a transaction's query runner when its connection reports an error, so the next
    // statement (often COMMIT, not yet sent) fails with this instead of the connection's own error.
    if (name === 'QueryRunnerAlreadyReleasedError') return true;
    if (typeof message === 'string' && DRIVER_MESSAGES.test(message)) return true;
    current = (current as { driverError?: unknown }).driverError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}
