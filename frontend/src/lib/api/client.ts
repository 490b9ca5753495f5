/**
 * The typed API client: openapi-fetch over the paths generated from the API's own OpenAPI
 * document (schema.d.ts, `npm run gen:api`). A path that the API does not have is a type error,
 * and every answer has the type the API declares for it.
 *
 * Every call either returns the answer or throws an {@link ApiError} whose message is the API's
 * own wording (its `detail`), so a page can show it as it is.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

type UseCaseOf<P> = P extends `/api/v1/${infer U}/incremental/metrics` ? U : never;
/** The use cases the API had when the client was generated ("tfd" | "eta" | "ecci"). */
export type UseCase = UseCaseOf<keyof paths>;
/** An event as the user wrote it: the API checks it, and says what is wrong in its own words. */
export type Event = Record<string, unknown>;
export type SqlRequest = components['schemas']['SqlRequest'];

type EventPath = `/api/v1/${UseCase}/${'incremental/predict' | 'batch/predict' | 'batch/explain'}`;
/** The API's paths as this client sends them: an event goes unchecked (the API checks it), so
 * the routes that take events take any {@link Event} here; everything else is as generated. */
type Sent = {
	[P in keyof paths]: P extends EventPath
		? Omit<paths[P], 'post'> & {
				post: Omit<paths[P]['post'], 'requestBody'> & {
					requestBody: { content: { 'application/json': Event | Event[] } };
				};
			}
		: paths[P];
};

export class ApiError extends Error {
	constructor(
		/** HTTP status, 0 when the API did not answer at all. */
		readonly status: number,
		message: string,
		readonly detail?: unknown,
	) {
		super(message);
		this.name = 'ApiError';
	}
}

/** One line per problem, in the API's words: a string detail as it is, a list of field errors
 * as `field: message` (with the event's index in a list). */
export function describeDetail(detail: unknown): string {
	if (detail == null) return '';
	if (typeof detail === 'string') return detail;
	if (Array.isArray(detail)) {
		return detail
			.map((e) => {
				if (e && typeof e === 'object') {
					const { field, message, index, msg, loc } = e as Record<string, unknown>;
					const where = field ?? (Array.isArray(loc) ? loc.join('.') : undefined);
					const what = message ?? msg ?? JSON.stringify(e);
					const at = index === undefined ? '' : ` (event ${index})`;
					return where ? `${where}: ${what}${at}` : `${what}${at}`;
				}
				return String(e);
			})
			.join('\n');
	}
	return JSON.stringify(detail);
}

export function errorFrom(status: number, body: unknown, statusText = ''): ApiError {
	const detail = body && typeof body === 'object' && 'detail' in body ? (body as { detail: unknown }).detail : body;
	const text = describeDetail(detail) || statusText || 'no message';
	return new ApiError(status, `${status}: ${text}`, detail);
}

export interface ClientOptions {
	/** Where the API is: '' (the same origin, as served by the Serve ingress or the dev proxy). */
	baseUrl?: string;
	fetch?: typeof fetch;
	/** The bearer token for control routes (start/stop/reset), when the API has one set. */
	token?: () => string | null | undefined;
}

/** What openapi-fetch answers: the declared answer, or the error's body. */
type Answer<Data> = { data?: Data; error?: unknown; response: Response };

export function makeApi(options: ClientOptions = {}) {
	const fetcher = options.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
	const client = createClient<Sent>({ baseUrl: options.baseUrl ?? '', fetch: fetcher });

	async function call<Data>(request: () => Promise<Answer<Data>>): Promise<Data> {
		let answer: Answer<Data>;
		try {
			answer = await request();
		} catch (exc) {
			const why = exc instanceof Error ? exc.message : String(exc);
			throw new ApiError(0, `the API does not answer (${why})`);
		}
		if (answer.error !== undefined || !answer.response.ok || answer.data === undefined) {
			throw errorFrom(answer.response.status, answer.error, answer.response.statusText);
		}
		return answer.data;
	}

	function auth(): { headers: Record<string, string> } {
		const token = options.token?.();
		return { headers: token ? { Authorization: `Bearer ${token}` } : {} };
	}

	const path = <Rest extends string>(uc: UseCase, rest: Rest): `/api/v1/${UseCase}/${Rest}` => `/api/v1/${uc}/${rest}`;

	return {
		usecases: () => call(() => client.GET('/api/v1/usecases')),
		health: () => call(() => client.GET('/api/v1/health')),
		sql: (body: SqlRequest) => call(() => client.POST('/api/v1/sql', { body })),
		sample: (uc: UseCase) => call(() => client.GET(path(uc, 'sample'))),
		model: (uc: UseCase) => call(() => client.GET(path(uc, 'model'))),
		metrics: (uc: UseCase) => call(() => client.GET(path(uc, 'incremental/metrics'))),
		/** A prediction, with the features it used and their entity memories' freshness. */
		predict: (uc: UseCase, kind: 'incremental' | 'batch', event: Event) =>
			call(() => client.POST(path(uc, `${kind}/predict`), { body: event, params: { query: { features: true } } })),
		/** One entity's stored memory and the features its next event would get. */
		entity: (uc: UseCase, field: string, value: string) =>
			call(() => client.GET(path(uc, 'entities/{field}/{value}'), { params: { path: { field, value } } })),
		explain: (uc: UseCase, event: Event) => call(() => client.POST(path(uc, 'batch/explain'), { body: event })),
		control: (uc: UseCase, action: 'start' | 'stop' | 'reset') =>
			call(() => client.POST(path(uc, `incremental/${action}`), auth())),
		links: () => call(() => client.GET('/api/v1/links')),
		sqlTables: () => call(() => client.GET('/api/v1/sql/tables')),
		versions: (uc: UseCase) => call(() => client.GET(path(uc, 'batch/versions'))),
		promote: (uc: UseCase, version: number) =>
			call(() => client.POST(path(uc, 'batch/promote'), { body: { version }, ...auth() })),
		rollback: (uc: UseCase) => call(() => client.POST(path(uc, 'batch/rollback'), auth())),
		startSweep: (uc: UseCase, trials: number, maxRows?: number | null) =>
			call(() => client.POST(path(uc, 'batch/sweeps'), { body: { trials, max_rows: maxRows ?? null }, ...auth() })),
		sweeps: (uc: UseCase) => call(() => client.GET(path(uc, 'batch/sweeps'))),
		sweep: (uc: UseCase, jobId: string) =>
			call(() => client.GET(path(uc, 'batch/sweeps/{job_id}'), { params: { path: { job_id: jobId } } })),
		trials: (uc: UseCase, sweep?: string | null) =>
			call(() => client.GET(path(uc, 'batch/trials'), { params: { query: sweep ? { sweep } : {} } })),
		evaluation: (uc: UseCase, rows = 2000) =>
			call(() => client.GET(path(uc, 'batch/evaluation'), { params: { query: { rows } } })),
	};
}

export type Api = ReturnType<typeof makeApi>;
