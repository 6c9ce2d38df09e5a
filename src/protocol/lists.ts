/** Shapes shared by the stored resources: cursor-paginated lists, list queries, metadata, deletion results. */
import { Type } from 'typebox';

/** OpenAI's metadata: at most 16 string values, keys up to 64 characters, values up to 512. */
export const Metadata = Type.Union(
  [Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 16 }), Type.Null()],
  { title: 'Metadata', description: 'up to 16 key-value pairs (keys ≤ 64 characters, values ≤ 512)' },
);

/**
 * `after` / `limit` as query parameters. They arrive as strings (the server
 * never coerces types), so `limit` is a digit string here and its range is
 * checked by parseLimit (serving/files.ts).
 */
export const pageFields = {
  after: Type.Optional(Type.String({ maxLength: 256, description: 'the id of the last object of the previous page' })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$', description: 'page size (see the route for its range and default)' })),
};

export const Order = Type.Union([Type.Literal('asc'), Type.Literal('desc')]);
