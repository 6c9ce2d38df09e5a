/** The Files API: POST/GET /v1/files, GET/DELETE /v1/files/{file_id}, GET /v1/files/{file_id}/content. */
import { Type, type Static } from 'typebox';
import { Order, pageFields } from './lists.ts';

/** What a client may upload for. */
export const UPLOAD_PURPOSES = ['fine-tune', 'batch', 'evals', 'user_data'] as const;
/** What the server itself writes. */
export const SERVER_PURPOSES = ['fine-tune-results', 'batch_output'] as const;

export const OpenAIFile = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('file'),
    bytes: Type.Integer(),
    created_at: Type.Integer(),
    expires_at: Type.Optional(Type.Integer({ description: 'when the file is deleted (absent: never)' })),
    filename: Type.String(),
    purpose: Type.String({ description: `${UPLOAD_PURPOSES.join(', ')} (uploaded), ${SERVER_PURPOSES.join(', ')} (written by the server)` }),
    status: Type.Literal('processed', { description: 'deprecated by OpenAI; always processed: a file is listed only once its bytes are stored' }),
  },
  { title: 'OpenAIFile' },
);
export type OpenAIFile = Static<typeof OpenAIFile>;

export const FileUpload = Type.Object(
  {
    file: Type.String({ format: 'binary', description: 'the file (streamed to disk; at most --max-file-bytes)' }),
    purpose: Type.Union(UPLOAD_PURPOSES.map((p) => Type.Literal(p))),
    'expires_after[anchor]': Type.Optional(Type.Literal('created_at')),
    'expires_after[seconds]': Type.Optional(Type.Integer({ minimum: 3600, maximum: 2592000 })),
  },
  { title: 'CreateFileRequest', description: 'multipart/form-data' },
);

export const ListFilesQuery = Type.Object({ ...pageFields, purpose: Type.Optional(Type.String()), order: Type.Optional(Order) }, { description: 'limit: 1 to 10000, default 10000' });
export type ListFilesQuery = Static<typeof ListFilesQuery>;

export const ListFilesResponse = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(OpenAIFile),
    first_id: Type.String({ description: 'empty when the page is' }),
    last_id: Type.String({ description: 'empty when the page is' }),
    has_more: Type.Boolean(),
  },
  { title: 'ListFilesResponse' },
);

export const FileParams = Type.Object({ file_id: Type.String({ maxLength: 128 }) });

export const DeleteFileResponse = Type.Object({ id: Type.String(), object: Type.Literal('file'), deleted: Type.Boolean() }, { title: 'DeleteFileResponse' });
