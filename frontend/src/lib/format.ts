/** Small formatting helpers shared by the pages. */

export function num(value: unknown, digits = 3): string {
	if (value === null || value === undefined || value === '') return '—';
	const n = Number(value);
	if (!Number.isFinite(n)) return String(value);
	if (Number.isInteger(n) && Math.abs(n) >= 1000) return n.toLocaleString('en-US');
	if (Math.abs(n) >= 1000) return n.toLocaleString('en-US', { maximumFractionDigits: 0 });
	return n.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function pct(share: unknown): string {
	const n = Number(share);
	return share === null || share === undefined || !Number.isFinite(n) ? '—' : `${(n * 100).toFixed(1)} %`;
}

/** "3.2 s", "4 min", "2.1 h" for a duration in seconds. */
export function seconds(s: unknown): string {
	const n = Number(s);
	if (s === null || s === undefined || !Number.isFinite(n)) return '—';
	if (n < 60) return `${n.toFixed(n < 10 ? 1 : 0)} s`;
	if (n < 3600) return `${(n / 60).toFixed(1)} min`;
	return `${(n / 3600).toFixed(1)} h`;
}

/** Seconds since a unix time (seconds), or null. */
export function age(unixSeconds: unknown, now = Date.now() / 1000): number | null {
	const n = Number(unixSeconds);
	return unixSeconds === null || unixSeconds === undefined || !Number.isFinite(n) ? null : Math.max(0, now - n);
}

export function cell(value: unknown): string {
	if (value === null || value === undefined) return 'NULL';
	if (typeof value === 'object') return JSON.stringify(value);
	return String(value);
}
