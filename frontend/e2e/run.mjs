// End to end in a real browser: Debian's Chromium, driven by playwright-core, against the UI that
// the Serve ingress serves on a running stack (learners and producers running).
//
//   RTML_UI_URL=http://127.0.0.1:8000 RTML_E2E_OUT=../test-output/e2e node e2e/run.mjs
//
// RTML_E2E_TOKEN: the API's bearer token, when the stack has one (the control checks need it).
// RTML_E2E_USECASES: which use case pages to walk (default: every use case the API serves).
// Exits non-zero on the first failed check, naming it; a screenshot of each page is saved.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.RTML_UI_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '');
const out = process.env.RTML_E2E_OUT ?? 'test-output/e2e';
const token = process.env.RTML_E2E_TOKEN ?? '';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(out, { recursive: true });

const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
let checks = 0;
function check(ok, what) {
	if (!ok) throw new Error(`check failed: ${what}`);
	checks += 1;
	log('ok', what);
}

const browser = await chromium.launch({
	executablePath,
	headless: true,
	// The machine has no network but loopback: no background calls home, no sandbox as root.
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const pageErrors = [];
const failedApi = [];

async function newPage(viewport = { width: 1366, height: 900 }) {
	const page = await browser.newPage({ viewport });
	page.setDefaultTimeout(30_000);
	page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
	page.on('console', (m) => m.type() === 'error' && log('console error:', m.text()));
	page.on('response', (r) => {
		if (r.url().includes('/api/') && r.status() >= 500) failedApi.push(`${r.status()} ${r.url()}`);
	});
	return page;
}

const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
const number = (text) => Number(String(text).replace(/[^0-9.-]/g, ''));
const points = (page, label) => page.locator(`[data-chart="${label}"]`).getAttribute('data-points').then(Number);

async function overview() {
	const page = await newPage();
	await page.goto(`${base}/`);
	await page.getByTestId('dependencies').waitFor();
	const deps = await page.getByTestId('dependencies').innerText();
	for (const d of ['redis', 'kafka', 'mlflow', 'ray']) check(deps.includes(d), `overview shows the health of ${d}`);
	check((await page.getByTestId('health-status').innerText()).includes('ok'), 'overview: the stack is healthy');
	const table = page.getByTestId('usecases-table');
	await page.waitForFunction(() => Number(document.querySelector('[data-chart="overview-rates"]')?.getAttribute('data-points')) >= 2);
	const rows = await table.locator('tbody tr').allInnerTexts();
	check(rows.length >= 3, `overview lists the use cases (${rows.length} rows)`);
	check(await page.getByRole('link', { name: /Ray dashboard/ }).isVisible(), 'overview links to the Ray dashboard');
	check(await page.getByRole('link', { name: /MLflow/ }).isVisible(), 'overview links to MLflow');
	check(await page.getByRole('link', { name: /Prometheus/ }).isVisible(), 'overview links to Prometheus');
	await shot(page, 'overview');
	const names = await page.locator('nav a').allInnerTexts();
	await page.close();
	return names.filter((n) => n !== 'Overview');
}

async function incremental(page, uc) {
	await page.goto(`${base}/${uc}`);
	await page.locator('[data-chart="primary-metric"]').waitFor({ timeout: 90_000 });
	const p1 = await points(page, 'primary-metric');
	const l1 = number(await page.getByTestId('learned').innerText());
	// the chart grows as the learner learns: a few polls later it has more points and more events
	await page.waitForFunction(
		([n, l]) =>
			Number(document.querySelector('[data-chart="primary-metric"]').getAttribute('data-points')) >= n + 3 &&
			Number(document.querySelector('[data-testid="learned"]').textContent.replace(/[^0-9.]/g, '')) > l,
		[p1, l1],
		{ timeout: 60_000 },
	);
	const p2 = await points(page, 'primary-metric');
	const l2 = number(await page.getByTestId('learned').innerText());
	check(p2 > p1 && l2 > l1, `${uc}: the metrics chart grows (${p1} → ${p2} points, ${l1} → ${l2} events learned)`);
	check((await page.getByTestId('metrics-table').innerText()).includes('★'), `${uc}: the metrics table shows the primary metric`);

	// a prediction from a generated event, answered with the model version
	await page.waitForFunction((id) => document.querySelector(`#inc-${id}-timestamp`)?.value, uc);
	await page.getByTestId('fill').click();
	await page.getByTestId('predict').click();
	await page.getByTestId('prediction').waitFor();
	const answer = await page.getByTestId('prediction').innerText();
	const version = await page.getByTestId('model-version').innerText();
	check(/\d+/.test(version), `${uc}: a prediction answered by model version ${version}`);
	log(`${uc} prediction:`, answer.replace(/\s+/g, ' '));

	// a field the API refuses: its message per field is shown
	const firstNumber = page.locator(`input[id^="inc-${uc}-"][inputmode="decimal"]`).first();
	if (await firstNumber.count()) {
		await firstNumber.fill('not-a-number');
		await page.getByTestId('predict').click();
		await page.getByText('fix the marked fields first').waitFor();
		check(true, `${uc}: a bad field is caught before sending`);
	}
	await shot(page, `${uc}-incremental`);
}

async function control(page, uc) {
	// without the token the API refuses learner control, and the page says why
	await page.locator('#token').fill('');
	await page.locator('#token').dispatchEvent('change');
	await page.getByTestId('start').click();
	const refused = page.getByRole('alert').filter({ hasText: 'Learner control' });
	await refused.waitFor();
	check((await refused.innerText()).includes('401'), `${uc}: learner control without the token is refused with the API's message`);
	// with it, start is accepted (the learner already runs: start is idempotent)
	await page.locator('#token').fill(token);
	await page.locator('#token').dispatchEvent('change');
	await page.getByTestId('start').click();
	await page.getByText(/^Done: shard 0: running/).waitFor({ timeout: 120_000 });
	check(true, `${uc}: start with the token is accepted`);
}

/** The chart of the champion's evaluation that each task draws. */
const EVALUATION_CHART = { classification: 'roc', regression: 'predicted-vs-actual', clustering: 'projection' };

async function batch(page, uc, { sweep = false } = {}) {
	await page.getByTestId('tab-batch').click();
	await page.getByTestId('versions').waitFor();
	await page.getByTestId('champion-version').waitFor({ timeout: 60_000 });
	check(true, `${uc}: the batch tab shows the champion`);
	await page.locator('[data-testid="version-1"]').waitFor();
	check(true, `${uc}: the registry's versions are listed with their holdout scores`);
	const chart = page.locator('[data-testid="evaluation"] [data-chart]').first();
	await chart.waitFor({ timeout: 90_000 });
	const label = await chart.getAttribute('data-chart');
	check(Object.values(EVALUATION_CHART).includes(label) && (await points(page, label)) > 1, `${uc}: the champion's evaluation on the lake draws ${label}`);
	if (label === 'roc') check(await page.getByTestId('confusion').isVisible(), `${uc}: the confusion matrix is shown`);
	if (label === 'projection') check(await page.getByTestId('cluster-sizes').isVisible(), `${uc}: the cluster sizes are shown`);
	if (sweep) await sweepAndPromote(page, uc);
	await shot(page, `${uc}-batch`);
}

async function sweepAndPromote(page, uc) {
	// a two-trial sweep started from the page, followed to its end
	await page.getByTestId('sweep-trials').fill('2');
	await page.getByTestId('start-sweep').click();
	await page.getByTestId('sweep-status').waitFor();
	await page.getByTestId('sweep-state').filter({ hasText: /SUCCEEDED|FAILED|STOPPED/ }).waitFor({ timeout: 360_000 });
	const state = await page.getByTestId('sweep-state').innerText();
	check(state === 'SUCCEEDED', `${uc}: the sweep started from the page ran to its end (${state})`);
	await page.getByTestId('sweep-result').waitFor({ timeout: 30_000 });
	check((await page.getByTestId('sweep-done').innerText()) === '2', `${uc}: both trials are counted as they finish`);
	const result = await page.getByTestId('sweep-result').innerText();
	log(`${uc} sweep:`, result.replace(/\s+/g, ' '));
	await page.locator('[data-testid="trials"] tbody tr').first().waitFor({ timeout: 30_000 });
	const trials = await page.locator('[data-testid="trials"] tbody tr').count();
	check(trials >= 2, `${uc}: the sweep's trials are listed with their parameters and scores (${trials})`);
	check((await points(page, 'trials')) >= 2, `${uc}: the trials are drawn score against parameter`);
	// two versions now: promote the one that is not champion, then roll back
	await page.locator('[data-testid="version-2"]').waitFor({ timeout: 30_000 });
	await page.locator('[data-testid^="promote-"]').first().click();
	await page.getByTestId('versions-done').filter({ hasText: 'promoted' }).waitFor();
	check(true, `${uc}: a version is promoted from the page`);
	await page.getByTestId('rollback').click();
	await page.getByTestId('versions-done').filter({ hasText: 'rolled back' }).waitFor();
	check(true, `${uc}: the champion is rolled back from the page`);
}

async function sql(page, uc) {
	await page.getByTestId('tab-sql').click();
	const editor = page.getByTestId('sql-editor');
	await editor.waitFor();
	await page.getByRole('heading', { name: 'Tables' }).waitFor();
	await page.locator('aside summary').filter({ hasText: uc }).first().waitFor();
	const summary = await page.locator('aside summary').filter({ hasText: uc }).first().innerText();
	check(/\d[\d,]* rows/.test(summary), `${uc}: the SQL tab lists the lake's ${uc} table with its rows (${summary.trim()})`);
	await editor.fill(`SELECT '${uc}' AS usecase, 41 + 1 AS answer`);
	await page.getByTestId('sql-run').click();
	await page.getByTestId('sql-result').waitFor();
	check((await page.getByTestId('sql-result').innerText()).includes('42'), `${uc}: a SQL query runs and its rows are shown`);
	await editor.fill(`SELECT 1; DROP TABLE ${uc}`);
	await page.getByTestId('sql-run').click();
	const refused = page.getByTestId('sql-error').getByRole('alert');
	await refused.waitFor();
	const message = await refused.innerText();
	check(message.includes('400'), `${uc}: a refused query shows the API's message (${message.replace(/\s+/g, ' ').slice(0, 120)})`);
	await shot(page, `${uc}-sql`);
}

async function phone(uc) {
	const page = await newPage({ width: 390, height: 844 });
	for (const path of ['/', `/${uc}`]) {
		await page.goto(`${base}${path}`);
		await page.locator('h1').waitFor();
		await page.waitForTimeout(1500);
		const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		check(wide <= 1, `phone: ${path} fits the screen's width (overflow ${wide}px)`);
		await shot(page, `phone${path === '/' ? '-overview' : path.replace('/', '-')}`);
	}
	await page.close();
}

async function unknownPage() {
	const page = await newPage();
	await page.goto(`${base}/nope`);
	await page.getByText('No use case “nope”').waitFor();
	check(true, 'an unknown use case page says so (no blank page)');
	await page.close();
}

let failed = null;
try {
	const usecases = (process.env.RTML_E2E_USECASES ?? '').split(',').filter(Boolean);
	const found = await overview();
	const walk = usecases.length ? usecases : found;
	check(walk.length > 0, `use case pages to walk: ${walk.join(', ')}`);
	for (const uc of walk) {
		const page = await newPage();
		await incremental(page, uc);
		if (uc === walk[0]) await control(page, uc);
		await batch(page, uc, { sweep: uc === walk[0] }); // the first page holds the token
		await sql(page, uc);
		await page.close();
	}
	await phone(walk[0]);
	await unknownPage();
	check(pageErrors.length === 0, `no uncaught error in any page${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}`);
	check(failedApi.length === 0, `no API call answered 5xx${failedApi.length ? `: ${failedApi.join('; ')}` : ''}`);
} catch (e) {
	failed = e;
	for (const [i, p] of browser.contexts().flatMap((c) => c.pages()).entries()) {
		await p.screenshot({ path: join(out, `failure-${i}.png`), fullPage: true }).catch(() => {});
	}
} finally {
	await browser.close();
}
if (failed) {
	console.error(`E2E FAILED after ${checks} checks: ${failed.message}`);
	if (pageErrors.length) console.error('page errors:', pageErrors.join('\n'));
	process.exit(1);
}
console.log(`${checks} passed, 0 failed`);
