import { expect, test } from 'vitest';
import type { LearnerStatus } from './api/types';
import { History, summarize } from './history';

function shard(shard: number, learned: number, offsets: Record<string, number>, lag: Record<string, number>, f2: number): LearnerStatus {
	return {
		usecase: 'tfd', shard, running: true, learned, events_per_s: 10, offsets, lag, last_event_at: 100,
		checkpoint: { version: 3 + shard, age_s: 2 + shard },
		metrics: {
			events: learned, primary: 'fbeta', overall: { fbeta: f2, roc_auc: 0.8 }, recent: { fbeta: f2 },
			oracle: { fbeta: 0.6, roc_auc: 0.9 }, share_of_oracle: { fbeta: f2 / 0.6 },
		},
	};
}

test('shards are summed, their metrics weighted by scored events', () => {
	const s = summarize([shard(0, 300, { '0': 300 }, { '0': 5 }, 0.3), shard(1, 100, { '1': 100 }, { '1': 1 }, 0.5)], 103_000);
	expect(s).toMatchObject({ running: 2, shards: 2, learned: 400, eventsPerS: 20, lag: 6, end: 406, primary: 'fbeta' });
	expect(s.overall.fbeta).toBeCloseTo(0.35);
	expect(s.lastEventAge).toBe(3);
	expect(s.checkpointAge).toBe(3);
	expect(s.checkpointVersion).toBe(3);
});

test('a stopped learner without metrics is still a snapshot', () => {
	const s = summarize([{ usecase: 'eta', shard: 0, running: false, checkpoint: null }], 0);
	expect(s).toMatchObject({ running: 0, learned: 0, end: null, primary: null, lastEventAge: null, overall: {} });
});

test('the history grows, estimates arrivals from the topic end, and starts anew after a reset', () => {
	const h = new History(3);
	h.add([shard(0, 100, { '0': 100 }, { '0': 0 }, 0.2)], 1000);
	const second = h.add([shard(0, 150, { '0': 150 }, { '0': 10 }, 0.25)], 3000);
	expect(second.inPerS).toBe(30); // (160 - 100) events in 2 s
	h.add([shard(0, 200, { '0': 200 }, { '0': 0 }, 0.3)], 4000);
	h.add([shard(0, 250, { '0': 250 }, { '0': 0 }, 0.3)], 5000);
	expect(h.points.length).toBe(3); // bounded
	h.add([shard(0, 10, { '0': 10 }, { '0': 0 }, 0.1)], 6000);
	expect(h.points.length).toBe(1);
	expect(h.metricNames()).toEqual(['fbeta', 'roc_auc']);
});
