// The typed client's paths (schema.d.ts) are generated from the committed OpenAPI copy
// (openapi.json, itself checked against the app by tests/unit/test_ui.py): regenerate and compare.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, test } from 'vitest';

test('schema.d.ts is what openapi-typescript makes of openapi.json', () => {
	const root = resolve(__dirname, '../../..');
	const out = join(mkdtempSync(join(tmpdir(), 'rtml-api-')), 'schema.d.ts');
	execFileSync(join(root, 'node_modules/.bin/openapi-typescript'), ['src/lib/api/openapi.json', '-o', out], {
		cwd: root,
		stdio: 'pipe',
	});
	const committed = readFileSync(join(root, 'src/lib/api/schema.d.ts'), 'utf8');
	expect(committed, 'run `npm run gen:api` in frontend/').toBe(readFileSync(out, 'utf8'));
}, 60_000);
