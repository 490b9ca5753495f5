/** ECharts options for the metric histories (plain data in, plain option out: testable). */
import type { PredictedPoint, PrPoint, ProjectedPoint, RocPoint, Trial } from './api/types';
import type { Point } from './history';

type Pick = (p: Point) => number | null | undefined;

function line(name: string, points: Point[], pick: Pick, extra: Record<string, unknown> = {}) {
	return {
		name,
		type: 'line',
		showSymbol: false,
		data: points.map((p) => {
			const v = pick(p);
			return [p.t, v === undefined || v === null || !Number.isFinite(v) ? null : v];
		}),
		...extra,
	};
}

function base(yName: string, series: unknown[]) {
	return {
		animation: false,
		tooltip: { trigger: 'axis' },
		legend: { top: 0, type: 'scroll' },
		grid: { left: 48, right: 16, top: 56, bottom: 28 },
		xAxis: { type: 'time' },
		yAxis: { type: 'value', name: yName, scale: true, nameTextStyle: { align: 'left' } },
		series,
	};
}

/** The primary metric: the model's overall and recent values beside the oracle's. */
export function primaryOption(points: Point[], metric: string) {
	return base(metric, [
		line(`${metric} (model)`, points, (p) => p.overall[metric]),
		line(`${metric} (recent window)`, points, (p) => p.recent[metric]),
		line(`${metric} (oracle)`, points, (p) => p.oracle[metric], { lineStyle: { type: 'dashed' } }),
	]);
}

/** Every metric as a share of the oracle's (1 = as good as the best reachable). */
export function shareOption(points: Point[], metrics: string[]) {
	return base(
		'share of oracle',
		metrics.map((m) => line(m, points, (p) => p.share[m])),
	);
}

/** Events/s coming into the topic and learned. */
export function rateOption(points: Point[]) {
	return base('events/s', [line('learned', points, (p) => p.eventsPerS), line('arriving', points, (p) => p.inPerS)]);
}

/** A horizontal bar per name (feature importance, contributions), largest magnitude first. */
export function barsOption(values: Record<string, number>, title: string, limit = 20) {
	const rows = Object.entries(values)
		.filter(([, v]) => Number.isFinite(v))
		.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
		.slice(0, limit)
		.reverse();
	return {
		animation: false,
		tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
		grid: { left: 8, right: 24, top: 28, bottom: 20, containLabel: true },
		title: { text: title, textStyle: { fontSize: 13 } },
		xAxis: { type: 'value' },
		yAxis: { type: 'category', data: rows.map(([k]) => k) },
		series: [
			{
				type: 'bar',
				data: rows.map(([, v]) => ({ value: v, itemStyle: { color: v < 0 ? '#c0504d' : '#4f81bd' } })),
			},
		],
	};
}

function plain(xName: string, yName: string, series: unknown[], extra: Record<string, unknown> = {}) {
	return {
		animation: false,
		tooltip: { trigger: 'item' },
		legend: { top: 0, type: 'scroll' },
		grid: { left: 56, right: 24, top: 48, bottom: 44 },
		xAxis: { type: 'value', name: xName, nameLocation: 'middle', nameGap: 28, scale: true },
		yAxis: { type: 'value', name: yName, scale: true },
		series,
		...extra,
	};
}

/** Trials: one parameter against the score, a point per trial. */
export function trialsOption(trials: Trial[], param: string, metric: string) {
	const data = trials
		.map((t) => [Number(t.params[param]), t.metrics[metric]])
		.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
	return plain(param, metric, [{ name: 'trials', type: 'scatter', symbolSize: 9, data }]);
}

/** ROC: the model's curve beside chance. */
export function rocOption(points: RocPoint[]) {
	return plain('false positive rate', 'true positive rate', [
		{ name: 'model', type: 'line', showSymbol: false, data: points.map((p) => [p.fpr, p.tpr]) },
		{ name: 'chance', type: 'line', showSymbol: false, lineStyle: { type: 'dashed' }, data: [[0, 0], [1, 1]] },
	]);
}

/** Precision against recall. */
export function prOption(points: PrPoint[]) {
	return plain('recall', 'precision', [{ name: 'model', type: 'line', showSymbol: false, data: points.map((p) => [p.recall, p.precision]) }]);
}

/** Predicted against actual, with the line where they are equal. */
export function predictedOption(points: PredictedPoint[], unit = 's') {
	const values = points.flatMap((p) => [p.actual, p.predicted]).filter(Number.isFinite);
	const lo = values.length ? Math.min(...values) : 0;
	const hi = values.length ? Math.max(...values) : 1;
	return plain(`actual (${unit})`, `predicted (${unit})`, [
		{ name: 'events', type: 'scatter', symbolSize: 4, data: points.map((p) => [p.actual, p.predicted]) },
		{ name: 'predicted = actual', type: 'line', showSymbol: false, lineStyle: { type: 'dashed' }, data: [[lo, lo], [hi, hi]] },
	]);
}

/** A histogram from bin edges and counts. */
export function histogramOption(edges: number[], counts: number[], xName: string) {
	const labels = counts.map((_, i) => `${Math.round(edges[i])}`);
	return {
		animation: false,
		tooltip: { trigger: 'axis' },
		grid: { left: 48, right: 16, top: 24, bottom: 44 },
		xAxis: { type: 'category', data: labels, name: xName, nameLocation: 'middle', nameGap: 28 },
		yAxis: { type: 'value', name: 'events' },
		series: [{ type: 'bar', data: counts, barCategoryGap: '5%' }],
	};
}

/** Events in a 2-D projection, one series per cluster (or per true segment). */
export function projectionOption(points: ProjectedPoint[], by: 'cluster' | 'segment') {
	const groups = new Map<string, number[][]>();
	for (const p of points) {
		const key = by === 'cluster' ? `cluster ${p.cluster}` : p.segment;
		if (!groups.has(key)) groups.set(key, []);
		groups.get(key)!.push([p.x, p.y]);
	}
	return plain('component 1', 'component 2', [...groups.entries()].sort().map(([name, data]) => ({ name, type: 'scatter', symbolSize: 5, data })));
}
