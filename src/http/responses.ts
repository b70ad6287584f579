/** Owns the HTTP server's response shapes: JSON bodies and `{ error: { code, message } }` errors. */
import { errorToWire, VoidRailError } from "../protocol/index.ts";

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...SECURITY_HEADERS, ...headers },
  });
}

/** JSON already encoded (a task list with results spliced in as the dealers sent them). */
export function jsonBytes(body: Uint8Array, status = 200): Response {
  return new Response(body as Uint8Array<ArrayBuffer>, {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...SECURITY_HEADERS },
  });
}

export function httpError(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return json({ error: { code, message } }, status, headers);
}

/** A thrown error as a response: VoidRail errors by their code (4xx), anything else 500 without details. */
export function errorResponse(error: unknown): Response {
  if (error instanceof VoidRailError) {
    const wire = errorToWire(error);
    const status =
      wire.code === "TASK_NOT_FOUND" || wire.code === "SCHEDULE_NOT_FOUND"
        ? 404
        : wire.code === "VALIDATION_ERROR"
          ? 400
          : wire.code === "NO_SUCH_METHOD"
            ? 404
            : 409;
    return json({ error: { code: wire.code, message: wire.message } }, status);
  }
  return httpError(500, "INTERNAL", "the request failed inside the router (see its log)");
}
