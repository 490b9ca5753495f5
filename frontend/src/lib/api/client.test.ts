import { describe, expect, test } from 'vitest';
import { ApiError, describeDetail, makeApi } from './client';

type Call = { url: string; method: string; headers: Headers; body: string };

function fakeFetch(status: number, body: unknown, calls: Call[] = []): typeof fetch {
	return (async (input: Request | string, init?: RequestInit) => {
		const req = input instanceof Request ? input : new Request(`http://ui${input}`, init);
		calls.push({ url: new URL(req.url).pathname, method: req.method, headers: req.headers, body: await req.text() });
		return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
	}) as typeof fetch;
}

describe('the API client', () => {
	test('calls the generated paths and returns the answer', async () => {
		const calls: Call[] = [];
		const api = makeApi({ baseUrl: 'http://ui', fetch: fakeFetch(200, { usecase: 'tfd', learners: [] }, calls) });
		expect(await api.metrics('tfd')).toEqual({ usecase: 'tfd', learners: [] });
		await api.predict('eta', 'batch', { trip_id: 'x' });
		await api.sql({ sql: 'SELECT 1' });
		expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
			'GET /api/v1/tfd/incremental/metrics',
			'POST /api/v1/eta/batch/predict',
			'POST /api/v1/sql',
		]);
		expect(JSON.parse(calls[1].body)).toEqual({ trip_id: 'x' });
		expect(JSON.parse(calls[2].body)).toEqual({ sql: 'SELECT 1' });
	});

	test('sends the bearer token on control routes only when one is set', async () => {
		const calls: Call[] = [];
		let token = '';
		const api = makeApi({ baseUrl: 'http://ui', fetch: fakeFetch(200, { learners: [] }, calls), token: () => token });
		await api.control('ecci', 'start');
		token = 's3cret';
		await api.control('ecci', 'stop');
		expect(calls[0].url).toBe('/api/v1/ecci/incremental/start');
		expect(calls[0].headers.get('authorization')).toBeNull();
		expect(calls[1].headers.get('authorization')).toBe('Bearer s3cret');
	});

	test("an error carries the API's own words", async () => {
		const refused = makeApi({ baseUrl: 'http://ui', fetch: fakeFetch(400, { detail: 'only SELECT is allowed' }) });
		await expect(refused.sql({ sql: 'DROP TABLE tfd' })).rejects.toMatchObject({
			status: 400,
			message: '400: only SELECT is allowed',
		});
		const invalid = makeApi({
			baseUrl: 'http://ui',
			fetch: fakeFetch(422, { detail: [{ field: 'amount', message: 'Input should be greater than 0' }] }),
		});
		const err = await invalid.predict('tfd', 'incremental', { amount: -1 }).catch((e) => e);
		expect(err).toBeInstanceOf(ApiError);
		expect(err.message).toBe('422: amount: Input should be greater than 0');
	});

	test('an API that does not answer is an error with status 0, not a crash', async () => {
		const api = makeApi({
			baseUrl: 'http://ui',
			fetch: (async () => {
				throw new TypeError('Failed to fetch');
			}) as typeof fetch,
		});
		await expect(api.health()).rejects.toMatchObject({ status: 0, message: 'the API does not answer (Failed to fetch)' });
	});
});

test('describeDetail: strings, field lists with list indices, FastAPI-style entries', () => {
	expect(describeDetail('no model yet')).toBe('no model yet');
	expect(
		describeDetail([
			{ field: 'currency', message: "Input should be 'USD'", index: 1 },
			{ loc: ['body', 'sql'], msg: 'Field required' },
		]),
	).toBe("currency: Input should be 'USD' (event 1)\nbody.sql: Field required");
	expect(describeDetail(undefined)).toBe('');
});
