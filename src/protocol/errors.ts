/**
 * OpenAI's error object, and the one exception type the serving layer throws
 * to produce it. Every error the server sends has this shape:
 * `{"error": {"message", "type", "param", "code"}}`.
 */
import { Type, type Static } from 'typebox';

export const ErrorObject = Type.Object(
  {
    message: Type.String(),
    type: Type.String({ description: 'invalid_request_error, authentication_error, rate_limit_error or server_error' }),
    param: Type.Union([Type.String(), Type.Null()], { description: 'the request field at fault, when there is one' }),
    code: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'Error' },
);

export const ErrorResponse = Type.Object({ error: ErrorObject }, { title: 'ErrorResponse' });
export type ErrorResponse = Static<typeof ErrorResponse>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (e.g. Retry-After, WWW-Authenticate). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): ErrorResponse {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  static invalid(message: string, param: string | null = null, code: string | null = null): ApiError {
    return new ApiError(400, message, 'invalid_request_error', param, code);
  }

  static modelNotFound(model: string): ApiError {
    return new ApiError(404, `The model \`${model}\` does not exist.`, 'invalid_request_error', 'model', 'model_not_found');
  }

  static unauthorized(message: string): ApiError {
    return new ApiError(401, message, 'authentication_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });
  }

  static queueFull(message: string): ApiError {
    return new ApiError(429, message, 'rate_limit_error', null, 'rate_limit_exceeded', { 'retry-after': '1' });
  }

  static unavailable(message: string, code = 'service_unavailable'): ApiError {
    return new ApiError(503, message, 'server_error', null, code, { 'retry-after': '5' });
  }

  static internal(message = 'The server had an error while processing your request.'): ApiError {
    return new ApiError(500, message, 'server_error', null, null);
  }
}
