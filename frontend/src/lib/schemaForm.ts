/**
 * A prediction form built from the event's JSON schema, as the API's OpenAPI document states it
 * (the request body of `POST /api/v1/{usecase}/incremental/predict`): one field per property,
 * its input kind from the type, its choices from `enum`, its bounds from minimum/maximum.
 */

export type FieldKind = 'integer' | 'number' | 'string' | 'boolean' | 'choice' | 'datetime';

export interface Field {
	name: string;
	title: string;
	kind: FieldKind;
	required: boolean;
	/** null is allowed (e.g. the target, which a prediction request may leave out) */
	nullable: boolean;
	choices?: string[];
	min?: number;
	max?: number;
	/** true when the bound itself is not allowed (exclusiveMinimum / exclusiveMaximum) */
	exclusiveMin?: boolean;
	exclusiveMax?: boolean;
	description?: string;
}

type Schema = Record<string, unknown>;
type Document = { paths?: Record<string, unknown>; components?: { schemas?: Record<string, Schema> } };

function resolve(doc: Document, schema: Schema): Schema {
	const ref = schema.$ref;
	if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
		const found = doc.components?.schemas?.[ref.slice('#/components/schemas/'.length)];
		if (!found) throw new Error(`the API schema has no ${ref}`);
		return resolve(doc, found);
	}
	return schema;
}

/** The event schema of a use case's predict request (the object form of "one event or a list"). */
export function eventSchema(doc: Document, usecase: string): Schema {
	const op = (doc.paths?.[`/api/v1/${usecase}/incremental/predict`] as Schema | undefined)?.post as Schema | undefined;
	const body = (op?.requestBody as Schema | undefined)?.content as Record<string, Schema> | undefined;
	const schema = body?.['application/json']?.schema as Schema | undefined;
	if (!schema) throw new Error(`the API schema has no request body for ${usecase}'s predict`);
	const options = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
	const candidates = options ?? [schema];
	for (const option of candidates) {
		const resolved = resolve(doc, option);
		if (resolved.type === 'object' || resolved.properties) return resolved;
	}
	throw new Error(`no object schema among ${usecase}'s predict body options`);
}

function kindOf(doc: Document, prop: Schema): { kind: FieldKind; nullable: boolean; choices?: string[]; base: Schema } {
	let base = resolve(doc, prop);
	let nullable = false;
	const union = (base.anyOf ?? base.oneOf) as Schema[] | undefined;
	if (union) {
		const rest = union.map((s) => resolve(doc, s)).filter((s) => s.type !== 'null');
		nullable = rest.length < union.length;
		base = { ...base, ...(rest[0] ?? {}) };
	}
	if (Array.isArray(base.enum)) return { kind: 'choice', nullable, choices: base.enum.map(String), base };
	switch (base.type) {
		case 'integer':
			return { kind: 'integer', nullable, base };
		case 'number':
			return { kind: 'number', nullable, base };
		case 'boolean':
			return { kind: 'boolean', nullable, base };
		default:
			return { kind: base.format === 'date-time' ? 'datetime' : 'string', nullable, base };
	}
}

export function fieldsOf(doc: Document, usecase: string): Field[] {
	const schema = eventSchema(doc, usecase);
	const required = new Set((schema.required as string[] | undefined) ?? []);
	const props = (schema.properties ?? {}) as Record<string, Schema>;
	return Object.entries(props).map(([name, prop]) => {
		const { kind, nullable, choices, base } = kindOf(doc, prop);
		const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
		const field: Field = {
			name,
			title: String(prop.title ?? base.title ?? name),
			kind,
			required: required.has(name),
			nullable,
			description: (prop.description ?? base.description) as string | undefined,
		};
		if (choices) field.choices = choices;
		const min = num(base.minimum) ?? num(base.exclusiveMinimum);
		const max = num(base.maximum) ?? num(base.exclusiveMaximum);
		if (min !== undefined) field.min = min;
		if (max !== undefined) field.max = max;
		if (base.exclusiveMinimum !== undefined) field.exclusiveMin = true;
		if (base.exclusiveMaximum !== undefined) field.exclusiveMax = true;
		return field;
	});
}

/** What the form's inputs hold: text for most kinds, a boolean for a checkbox. */
export type Raw = Record<string, string | boolean>;

/** An event (e.g. from /sample) as the form's inputs. */
export function toRaw(fields: Field[], event: Record<string, unknown>): Raw {
	const raw: Raw = {};
	for (const f of fields) {
		const v = event[f.name];
		if (f.kind === 'boolean') raw[f.name] = v === null || v === undefined ? (f.nullable ? '' : false) : Boolean(v);
		else raw[f.name] = v === null || v === undefined ? '' : String(v);
	}
	return raw;
}

/** The form's inputs as an event, typed by the schema; problems the browser can already see
 * (a missing required field, a word in a number field) come back per field. The API checks the
 * rest (bounds, lengths) and says so in its own words. */
export function fromRaw(fields: Field[], raw: Raw): { event: Record<string, unknown>; errors: Record<string, string> } {
	const event: Record<string, unknown> = {};
	const errors: Record<string, string> = {};
	for (const f of fields) {
		const v = raw[f.name];
		if (f.kind === 'boolean') {
			if (v === '' || v === undefined) {
				if (f.nullable) continue;
				event[f.name] = false;
			} else event[f.name] = v === true || v === 'true';
			continue;
		}
		const text = typeof v === 'string' ? v.trim() : v === undefined ? '' : String(v);
		if (text === '') {
			if (f.required) errors[f.name] = 'required';
			continue;
		}
		if (f.kind === 'integer' || f.kind === 'number') {
			const n = Number(text);
			if (!Number.isFinite(n)) errors[f.name] = 'not a number';
			else if (f.kind === 'integer' && !Number.isInteger(n)) errors[f.name] = 'not a whole number';
			else event[f.name] = n;
		} else {
			event[f.name] = text;
		}
	}
	return { event, errors };
}
