/** The API's OpenAPI document as the running API serves it (so the forms follow the API that
 * answers), or the copy the client was generated from when the live one cannot be read. */
import bundled from './api/openapi.json';

let cached: Promise<Record<string, unknown>> | null = null;

export function apiDocument(fetcher: typeof fetch = (...a) => fetch(...a)): Promise<Record<string, unknown>> {
	cached ??= fetcher('/openapi.json')
		.then((r) => (r.ok ? r.json() : bundled))
		.catch(() => bundled);
	return cached;
}
