import { describe, expect, test } from 'vitest';
import doc from './api/openapi.json';
import { fieldsOf, fromRaw, toRaw } from './schemaForm';

describe('a form from the event schema', () => {
	const fields = fieldsOf(doc, 'tfd');
	const by = Object.fromEntries(fields.map((f) => [f.name, f]));

	test('one field per property, kinds and bounds from the schema', () => {
		expect(by.amount).toMatchObject({ kind: 'number', required: true, min: 0, exclusiveMin: true });
		expect(by.account_age_days).toMatchObject({ kind: 'integer', min: 0, max: 36500 });
		expect(by.currency.kind).toBe('choice');
		expect(by.currency.choices).toContain('EUR');
		expect(by.timestamp.kind).toBe('datetime');
		expect(by.cvv_provided).toMatchObject({ kind: 'boolean', nullable: false });
		// the target: optional in a prediction request
		expect(by.is_fraud).toMatchObject({ kind: 'boolean', required: false, nullable: true });
	});

	test('every use case of the API has a form', () => {
		for (const uc of ['tfd', 'eta', 'ecci']) expect(fieldsOf(doc, uc).length).toBeGreaterThan(5);
		expect(() => fieldsOf(doc, 'nope')).toThrow(/no request body/);
	});

	test('an event round-trips through the form with its types', () => {
		const event = {
			transaction_id: 't1', user_id: 'u1', timestamp: '2025-01-01T00:00:00Z', amount: 12.5, currency: 'EUR',
			merchant_id: 'm', product_category: 'travel', transaction_type: 'online', payment_method: 'wallet',
			country: 'BR', city: 'Recife', latitude: -8.05, longitude: -34.9, device_os: 'iOS', device_browser: 'Safari',
			device_type: 'mobile', account_age_days: 40, cvv_provided: true, billing_address_match: false,
		};
		const { event: back, errors } = fromRaw(fields, toRaw(fields, event));
		expect(errors).toEqual({});
		expect(back).toEqual(event); // is_fraud left out: the API treats it as unknown
	});

	test('what the browser can see is reported per field', () => {
		const raw = toRaw(fields, {});
		raw.amount = 'twelve';
		raw.account_age_days = '1.5';
		const { errors } = fromRaw(fields, raw);
		expect(errors.amount).toBe('not a number');
		expect(errors.account_age_days).toBe('not a whole number');
		expect(errors.user_id).toBe('required');
		expect(errors.is_fraud).toBeUndefined();
	});
});
