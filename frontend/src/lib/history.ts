/**
 * The learner's prequential metrics over time, kept in the browser from polling
 * `GET /api/v1/{usecase}/incremental/metrics`: the API answers "now", the UI remembers.
 *
 * A use case with several shards is summed (counts, rates, lag) and its metrics averaged,
 * weighted by each shard's scored events.
 */
import type { LearnerStatus } from './api/types';

export interface Snapshot {
	/** browser clock, ms */
	t: number;
	running: number;
	shards: number;
	learned: number;
	eventsPerS: number;
	lag: number;
	/** offsets + lag over all partitions: the topic's end, to estimate events/s coming in */
	end: number | null;
	deadLettered: number;
	/** seconds since the last event was learned (any shard), null before the first */
	lastEventAge: number | null;
	checkpointAge: number | null;
	checkpointVersion: number | null;
	primary: string | null;
	overall: Record<string, number>;
	recent: Record<string, number>;
	oracle: Record<string, number>;
	share: Record<string, number>;
	errors: string[];
}

export interface Point extends Snapshot {
	/** events/s arriving on the topic since the previous point, null for the first */
	inPerS: number | null;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function weighted(rows: LearnerStatus[], pick: (r: LearnerStatus) => Record<string, number | null> | null | undefined) {
	const out: Record<string, number> = {};
	const weights: Record<string, number> = {};
	for (const r of rows) {
		const w = Math.max(r.metrics?.events ?? 0, 1);
		for (const [name, value] of Object.entries(pick(r) ?? {})) {
			if (typeof value !== 'number' || !Number.isFinite(value)) continue;
			out[name] = (out[name] ?? 0) + value * w;
			weights[name] = (weights[name] ?? 0) + w;
		}
	}
	for (const name of Object.keys(out)) out[name] /= weights[name];
	return out;
}

export function summarize(learners: LearnerStatus[], t = Date.now()): Snapshot {
	const scored = learners.filter((r) => r.metrics);
	const nowS = t / 1000;
	const ends: number[] = [];
	let complete = learners.length > 0;
	for (const r of learners) {
		if (!r.offsets || !r.lag) {
			complete = false;
			continue;
		}
		for (const [p, offset] of Object.entries(r.offsets)) ends.push(offset + (r.lag[p] ?? 0));
	}
	const lastEvents = learners.map((r) => r.last_event_at).filter((x): x is number => typeof x === 'number');
	const checkpoints = learners
		.map((r) => r.checkpoint)
		.filter((c): c is Record<string, unknown> => !!c && typeof c === 'object');
	const ages = checkpoints.map((c) => c.age_s).filter((x): x is number => typeof x === 'number');
	const versions = checkpoints.map((c) => c.version).filter((x): x is number => typeof x === 'number');
	return {
		t,
		running: learners.filter((r) => r.running).length,
		shards: learners.length,
		learned: sum(learners.map((r) => r.learned ?? 0)),
		eventsPerS: sum(learners.map((r) => r.events_per_s ?? 0)),
		lag: sum(learners.flatMap((r) => Object.values(r.lag ?? {}))),
		end: complete ? sum(ends) : null,
		deadLettered: sum(learners.map((r) => r.dead_lettered ?? 0)),
		lastEventAge: lastEvents.length ? Math.max(0, nowS - Math.max(...lastEvents)) : null,
		checkpointAge: ages.length ? Math.max(...ages) : null,
		checkpointVersion: versions.length ? Math.min(...versions) : null,
		primary: scored[0]?.metrics?.primary ?? null,
		overall: weighted(scored, (r) => r.metrics?.overall),
		recent: weighted(scored, (r) => r.metrics?.recent),
		oracle: weighted(scored, (r) => r.metrics?.oracle),
		share: weighted(scored, (r) => r.metrics?.share_of_oracle),
		errors: learners.map((r) => r.error).filter((e): e is string => !!e),
	};
}

export class History {
	points: Point[] = [];

	constructor(readonly max = 900) {}

	add(learners: LearnerStatus[], t = Date.now()): Point {
		const snap = summarize(learners, t);
		const prev = this.points.at(-1);
		if (prev && snap.learned < prev.learned) this.points = []; // a reset: start the curve anew
		const last = this.points.at(-1);
		let inPerS: number | null = null;
		if (last && last.end !== null && snap.end !== null && snap.t > last.t && snap.end >= last.end) {
			inPerS = ((snap.end - last.end) * 1000) / (snap.t - last.t);
		}
		const point = { ...snap, inPerS };
		this.points = [...this.points, point].slice(-this.max);
		return point;
	}

	/** The metric names seen, the primary first. */
	metricNames(): string[] {
		const names = new Set<string>();
		const last = this.points.at(-1);
		if (last?.primary) names.add(last.primary);
		for (const p of this.points) for (const n of Object.keys(p.overall)) names.add(n);
		return [...names];
	}
}
