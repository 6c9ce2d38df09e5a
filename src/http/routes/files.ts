/** POST/GET /v1/files, GET/DELETE /v1/files/{file_id}, GET /v1/files/{file_id}/content */
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { ApiError, ErrorResponse } from '../../protocol/errors.ts';
import { DeleteFileResponse, FileParams, FileUpload, ListFilesQuery, ListFilesResponse, OpenAIFile } from '../../protocol/files.ts';
import { fileTooLarge, toApiFile, type FileService } from '../../serving/files.ts';
import type { StagedBytes } from '../../store/data-dir.ts';

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'No such file') };

/** Form fields are short: purpose and expiry. */
const MAX_FIELD_BYTES = 1024;

export const fileRoutes: FastifyPluginAsyncTypebox<{ service: FileService }> = async (app, { service }) => {
  // Multipart bodies are accepted on these routes only; the file part is streamed to disk, never buffered.
  await app.register(multipart, { limits: { fileSize: service.maxFileBytes + 1, files: 1, fields: 8, fieldSize: MAX_FIELD_BYTES, parts: 9, headerPairs: 64 } });

  app.post(
    '/v1/files',
    {
      schema: {
        summary: 'Upload a file',
        tags: ['Files'],
        multipartBody: FileUpload,
        response: { 200: json(OpenAIFile, 'The file, stored'), 413: json(ErrorResponse, 'Larger than --max-file-bytes'), 415: json(ErrorResponse, 'Not multipart/form-data'), ...errors },
      },
    },
    async (request) => {
      const { staged, filename, fields } = await readUpload(request, service);
      return service.commit(staged, filename, fields);
    },
  );

  app.get(
    '/v1/files',
    { schema: { summary: 'List files', tags: ['Files'], querystring: ListFilesQuery, response: { 200: json(ListFilesResponse, 'A page of files'), ...errors } } },
    async (request) => service.list(request.query),
  );

  app.get(
    '/v1/files/:file_id',
    { schema: { summary: 'Describe a file', tags: ['Files'], params: FileParams, response: { 200: json(OpenAIFile, 'The file'), ...errors } } },
    async (request) => toApiFile(await service.get(request.params.file_id)),
  );

  app.delete(
    '/v1/files/:file_id',
    { schema: { summary: 'Delete a file', tags: ['Files'], params: FileParams, response: { 200: json(DeleteFileResponse, 'Deleted'), ...errors } } },
    async (request) => service.delete(request.params.file_id),
  );

  app.get(
    '/v1/files/:file_id/content',
    {
      schema: {
        summary: "A file's bytes",
        tags: ['Files'],
        params: FileParams,
        response: { 200: { description: 'The bytes, as uploaded', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...errors },
      },
    },
    async (request, reply) => {
      const file = await service.get(request.params.file_id);
      return reply.header('content-type', 'application/octet-stream').header('content-length', file.bytes).send(service.content(file));
    },
  );
};

/** Reads the form: the file part streamed to the store's staging area, the other parts as fields. */
async function readUpload(request: FastifyRequest, service: FileService): Promise<{ staged?: StagedBytes; filename: string; fields: Record<string, string> }> {
  if (!request.isMultipart()) throw new ApiError(415, 'Upload a file as multipart/form-data with the fields file and purpose.', 'invalid_request_error', null, 'unsupported_media_type');
  const fields: Record<string, string> = {};
  let staged: StagedBytes | undefined;
  let filename = 'file';
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          part.file.resume();
          throw ApiError.invalid(`Unexpected file field '${part.fieldname}': the file goes in 'file'.`, part.fieldname, 'invalid_value');
        }
        filename = part.filename || 'file';
        staged = await service.stage(part.file);
        if (part.file.truncated) throw fileTooLarge(service.maxFileBytes);
      } else {
        fields[part.fieldname] = String(part.value);
      }
    }
  } catch (e) {
    if (staged) service.discard(staged);
    throw multipartError(e, service.maxFileBytes);
  }
  return { staged, filename, fields };
}

/** @fastify/multipart's own errors, in OpenAI's shape. */
function multipartError(e: unknown, maxFileBytes: number): unknown {
  if (e instanceof ApiError) return e;
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return fileTooLarge(maxFileBytes);
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return ApiError.invalid('The form has more parts than an upload needs (one file, purpose, expires_after).', null, 'invalid_multipart');
    case 'FST_PROTO_VIOLATION':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return ApiError.invalid(`The multipart body is malformed (${(e as Error).message}).`, null, 'invalid_multipart');
  }
  if (e instanceof Error && /Unexpected end|Malformed|boundary|multipart/i.test(e.message)) return ApiError.invalid(`The multipart body is malformed (${e.message}).`, null, 'invalid_multipart');
  return e;
}
