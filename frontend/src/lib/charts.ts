/** ECharts options for the metric histories (plain data in, plain option out: testable). */
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
