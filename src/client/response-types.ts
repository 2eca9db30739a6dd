/**
 * Response shapes shared by the client's files.
 * @module
 */

/** Response headers as undici delivers them: lower-case names, repeated fields as arrays. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What {@link APIClient.request} resolves with. */
export interface ClientResponse<T> {
  /** HTTP status code. */
  status: number;
  /** Response headers (lower-case names). */
  headers: ResponseHeaders;
  /** The body, read as `responseType` asked (JSON by default). */
  data: T;
}
