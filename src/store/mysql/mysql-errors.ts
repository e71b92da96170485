import { StoreError } from "../store.js";

interface MysqlError {
  code?: string;
  errno?: number;
  fatal?: boolean;
  sqlState?: string;
}

const DUPLICATE_ENTRY = 1062;
const LOCK_WAIT_TIMEOUT = 1205;
const DEADLOCK = 1213;

export const isDuplicate = (err: unknown) => (err as MysqlError).errno === DUPLICATE_ENTRY;

/** A conflict between concurrent transactions: safe to run the whole transaction again. */
export const isRetryable = (err: unknown) => {
  const errno = (err as MysqlError).errno;
  return errno === DEADLOCK || errno === LOCK_WAIT_TIMEOUT;
};

// Connection-level failures: the server is down, restarting, or unreachable.
const unavailableCodes = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT", "ER_CON_COUNT_ERROR", "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED", "ER_QUERY_INTERRUPTED", "ER_SERVER_GONE_ERROR", "ER_SERVER_LOST",
]);

// A server that cannot take writes now: a primary demoted in a switchover (read_only,
// super_read_only) or a Galera node out of the primary component. Its connections are dropped
// like dead ones, so the pool dials again and reaches the new primary behind the same address.
const notPrimaryErrnos = new Set([1290, 1836, 1047]);

export function isConnectionError(err: unknown): boolean {
  const e = err as MysqlError;
  return e.fatal === true || (e.code !== undefined && unavailableCodes.has(e.code)) || (e.errno !== undefined && notPrimaryErrnos.has(e.errno));
}

/**
 * The server answered a statement with an error and kept the connection: that
 * statement did not run, nor anything after it in its batch (a COMMIT there included).
 */
export const isRefused = (err: unknown) => typeof (err as MysqlError).sqlState === "string" && !isConnectionError(err);

/** Maps a driver error to a StoreError when it has a meaning for callers; rethrows the rest. */
export function toStoreError(err: unknown): never {
  if (err instanceof StoreError) throw err;
  if (isConnectionError(err) || isRetryable(err)) {
    throw new StoreError("unavailable", "the database is unavailable; retry later", { cause: err });
  }
  throw err;
}
