/**
 * OpenAI's cursor pagination: `after` is the id of the last object of the
 * previous page, `limit` the page size; one more row than asked is read to
 * know whether there is more. Rows are ordered by their `seq`.
 */
export interface PageRequest {
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
}

export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

/** Splits the limit + 1 rows a query returned into the page and whether more follow. */
export function toPage<T>(rows: T[], limit: number): Page<T> {
  return { data: rows.slice(0, limit), hasMore: rows.length > limit };
}

/** A cursor that names no object: OpenAI answers with an empty page rather than an error for most lists; callers decide. */
export class UnknownCursorError extends Error {
  constructor(readonly cursor: string) {
    super(`no object with id ${cursor}`);
  }
}
