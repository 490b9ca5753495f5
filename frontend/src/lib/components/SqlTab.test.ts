import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { expect, test, vi } from 'vitest';
import { ApiError } from '../api/client';

const sql = vi.fn();
const sqlTables = vi.fn();
vi.mock('$lib/session.svelte', () => ({
	api: { sql: (...args: unknown[]) => sql(...args), sqlTables: () => sqlTables() },
	session: { token: '' },
}));

const { default: SqlTab } = await import('./SqlTab.svelte');

test("shows the lake's tables, results, and a refused query in the API's words", async () => {
	sqlTables.mockResolvedValue({
		tables: [
			{ name: 'tfd', rows: 1200, files: 3, version: 4, partition_by: ['event_date'],
			  columns: [{ name: 'amount', type: 'DOUBLE' }, { name: 'user_id', type: 'VARCHAR' }] },
			{ name: 'quarantine', rows: 7, files: 1, version: 1, partition_by: [], columns: [{ name: 'reason', type: 'VARCHAR' }] },
		],
	});
	sql.mockImplementation(async ({ sql: text }: { sql: string }) => {
		if (text.startsWith('DROP')) throw new ApiError(400, '400: only one SELECT statement is allowed');
		return { columns: ['n'], rows: [{ n: 42 }], row_count: 1, truncated: false, seconds: 0.01 };
	});
	const view = render(SqlTab, { usecase: 'tfd' });
	await waitFor(() => expect(view.getByText('user_id')).toBeTruthy());
	expect(view.getByText('amount').closest('li')!.textContent).toContain('DOUBLE');
	expect(view.getByText('quarantine').closest('summary')!.textContent).toContain('7 rows');

	const editor = view.getByTestId('sql-editor') as HTMLTextAreaElement;
	await fireEvent.input(editor, { target: { value: 'SELECT 42 AS n' } });
	await fireEvent.click(view.getByTestId('sql-run'));
	await waitFor(() => expect(view.getByTestId('sql-result').textContent).toContain('42'));
	expect(view.getByTestId('sql-summary').textContent).toContain('1 row');

	await fireEvent.input(editor, { target: { value: 'DROP TABLE tfd' } });
	await fireEvent.click(view.getByTestId('sql-run'));
	await waitFor(() => expect(view.getByRole('alert').textContent).toContain('only one SELECT statement is allowed'));
	expect(view.queryByTestId('sql-result')).toBeNull();
});
