/**
 * The typed API client: openapi-fetch over the paths generated from the API's own OpenAPI
 * document (schema.d.ts, `npm run gen:api`). A path that the API does not have is a type error.
 *
 * Every call either returns the answer or throws an {@link ApiError} whose message is the API's
 * own wording (its `detail`), so a page can show it as it is.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';
import type {
	Evaluation,
	ExplainAnswer,
	Health,
	LearnerControl,
	LearnerStatus,
	Links,
	ModelInfo,
	PredictAnswer,
	SqlResult,
	SqlTable,
	SweepJob,
	SweepStatus,
	Trial,
	UseCaseInfo,
	Versions,
} from './types';

type UseCaseOf<P> = P extends `/api/v1/${infer U}/incremental/metrics` ? U : never;
/** The use cases the API had when the client was generated ("tfd" | "eta" | "ecci"). */
export type UseCase = UseCaseOf<keyof paths>;
export type Event = Record<string, unknown>;
export type SqlRequest = components['schemas']['SqlRequest'];

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

type Answer = { data?: unknown; error?: unknown; response: Response };

export function makeApi(options: ClientOptions = {}) {
	const fetcher = options.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
	const client = createClient<paths>({ baseUrl: options.baseUrl ?? '', fetch: fetcher });

	async function call<T>(request: () => Promise<Answer>): Promise<T> {
		let answer: Answer;
		try {
			answer = await request();
		} catch (exc) {
			const why = exc instanceof Error ? exc.message : String(exc);
			throw new ApiError(0, `the API does not answer (${why})`);
		}
		if (answer.error !== undefined || !answer.response.ok) {
			throw errorFrom(answer.response.status, answer.error, answer.response.statusText);
		}
		return answer.data as T;
	}

	function auth(): { headers: Record<string, string> } {
		const token = options.token?.();
		return { headers: token ? { Authorization: `Bearer ${token}` } : {} };
	}

	const path = <Rest extends string>(uc: UseCase, rest: Rest) => `/api/v1/${uc}/${rest}` as `/api/v1/${UseCase}/${Rest}`;

	return {
		usecases: () => call<{ usecases: UseCaseInfo[] }>(() => client.GET('/api/v1/usecases')),
		health: () => call<Health>(() => client.GET('/api/v1/health')),
		sql: (body: SqlRequest) => call<SqlResult>(() => client.POST('/api/v1/sql', { body })),
		sample: (uc: UseCase) => call<Event>(() => client.GET(path(uc, 'sample'))),
		model: (uc: UseCase) => call<ModelInfo>(() => client.GET(path(uc, 'model'))),
		metrics: (uc: UseCase) =>
			call<{ usecase: string; learners: LearnerStatus[] }>(() => client.GET(path(uc, 'incremental/metrics'))),
		predict: (uc: UseCase, kind: 'incremental' | 'batch', event: Event) =>
			call<PredictAnswer>(() =>
				client.POST(path(uc, `${kind}/predict`), { body: event as never }),
			),
		explain: (uc: UseCase, event: Event) =>
			call<ExplainAnswer>(() => client.POST(path(uc, 'batch/explain'), { body: event as never })),
		control: (uc: UseCase, action: 'start' | 'stop' | 'reset') =>
			call<LearnerControl>(() => client.POST(path(uc, `incremental/${action}`), auth())),
		links: () => call<Links>(() => client.GET('/api/v1/links')),
		sqlTables: () => call<{ tables: SqlTable[] }>(() => client.GET('/api/v1/sql/tables')),
		versions: (uc: UseCase) => call<Versions>(() => client.GET(path(uc, 'batch/versions'))),
		promote: (uc: UseCase, version: number) =>
			call<{ champion: number }>(() => client.POST(path(uc, 'batch/promote'), { body: { version }, ...auth() })),
		rollback: (uc: UseCase) => call<{ champion: number }>(() => client.POST(path(uc, 'batch/rollback'), auth())),
		startSweep: (uc: UseCase, trials: number, maxRows?: number | null) =>
			call<{ job_id: string; trials: number }>(() =>
				client.POST(path(uc, 'batch/sweeps'), { body: { trials, max_rows: maxRows ?? null }, ...auth() }),
			),
		sweeps: (uc: UseCase) => call<{ sweeps: SweepJob[] }>(() => client.GET(path(uc, 'batch/sweeps'))),
		sweep: (uc: UseCase, jobId: string) =>
			call<SweepStatus>(() =>
				client.GET(`/api/v1/${uc}/batch/sweeps/{job_id}` as `/api/v1/${UseCase}/batch/sweeps/{job_id}`, {
					params: { path: { job_id: jobId } },
				} as never),
			),
		trials: (uc: UseCase, sweep?: string | null) =>
			call<{ primary_metric: string; trials: Trial[] }>(() =>
				client.GET(path(uc, 'batch/trials'), { params: { query: sweep ? { sweep } : {} } } as never),
			),
		evaluation: (uc: UseCase, rows = 2000) =>
			call<Evaluation>(() => client.GET(path(uc, 'batch/evaluation'), { params: { query: { rows } } } as never)),
	};
}

export type Api = ReturnType<typeof makeApi>;
