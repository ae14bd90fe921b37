// Large PDFs (docs/spec.md §2.4): a PDF over the request limit cannot go inside
// the submit request, so the app opens an upload session (POST /v1/uploads), PUTs
// the bytes straight to its upload_url and then submits JSON with upload_id.

import { appCheckHeaders } from './appcheck.js';

// The whole submit request must stay under the platform's 32 MiB: a PDF up to
// this size goes inside it (multipart), a larger one through an upload session.
export const REQUEST_PDF_LIMIT_BYTES = 30 * 1024 * 1024;
// What an upload session takes (MAX_UPLOAD_PDF_BYTES on the server).
export const MAX_UPLOAD_PDF_BYTES = 50 * 1024 * 1024;

/**
 * The size above which a PDF goes through a session. The runtime config may only
 * lower it (`uploadThresholdBytes`, for tests: a small PDF takes the session
 * path), never raise it past what one request can carry.
 */
export function uploadThreshold(config) {
  const override = Number(config?.uploadThresholdBytes);
  return override > 0 ? Math.min(override, REQUEST_PDF_LIMIT_BYTES) : REQUEST_PDF_LIMIT_BYTES;
}

export class UploadError extends Error {
  constructor(message, { status = 0, answer = null, retryAfter = 0 } = {}) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from a 429's Retry-After
    this.answer = answer; // the API's error body, when the session could not be opened
  }
}

/** POST /v1/uploads: {upload_id, upload_url, expires_at}. */
export async function openSession(submitUrl, token, file) {
  const response = await fetch(`${submitUrl}/v1/uploads`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(await appCheckHeaders()) },
    body: JSON.stringify({ size_bytes: file.size, filename: file.name }),
  });
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // not JSON: reported by status below
  }
  if (response.status !== 201 || !answer?.upload_url) {
    const retryAfter = Number(response.headers.get('Retry-After')) || 0;
    throw new UploadError(answer?.error?.message ?? `HTTP ${response.status}`, { status: response.status, answer, retryAfter });
  }
  return answer;
}

/**
 * PUT the file to the session URL. XMLHttpRequest rather than fetch: only it
 * reports upload progress, which a 40 MiB upload needs. onProgress gets 0..1.
 */
export function putFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', url);
    request.setRequestHeader('Content-Type', 'application/pdf');
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    request.addEventListener('load', () => {
      if (request.status >= 200 && request.status < 300) {
        onProgress(1);
        resolve();
      } else {
        reject(new UploadError(`HTTP ${request.status}`, { status: request.status }));
      }
    });
    request.addEventListener('error', () => reject(new UploadError('network error')));
    request.addEventListener('abort', () => reject(new UploadError('aborted')));
    request.send(file);
  });
}

/** Whether a session made earlier is still good for a while (it lasts 1 h). */
export function sessionStillValid(session, marginMs = 5 * 60 * 1000) {
  const expires = Date.parse(session?.expires_at ?? '');
  return Number.isFinite(expires) && expires - Date.now() > marginMs;
}
