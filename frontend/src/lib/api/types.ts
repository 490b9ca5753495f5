/**
 * The shapes of the API's answers, as the UI reads them.
 *
 * The request side (paths, methods, event schemas) is generated from the API's OpenAPI document
 * into schema.d.ts. The API declares most answers only as "an object" (its routes return plain
 * dicts, no response models), so the generated types cannot say more; these interfaces name the
 * fields the UI reads, and every reader tolerates a missing one.
 */

export interface Dependency {
	ok: boolean;
	ms?: number;
	detail?: string;
}

export interface Health {
	status: 'ok' | 'degraded' | string;
	dependencies: Record<string, Dependency>;
	usecases: Record<
		string,
		{
			incremental: {
				learners_running: number;
				shards: number;
				fallback_versions: Record<string, number>;
				serving: boolean;
			};
			batch: { version: number | null; reason?: string };
		}
	>;
}

export interface Feature {
	name: string;
	kind: string;
	doc: string;
}

export interface UseCaseInfo {
	name: string;
	title: string;
	task: 'classification' | 'regression' | 'clustering' | string;
	target: string | null;
	key: string;
	topic: string;
	primary_metric: string;
	features: Feature[];
	decision_threshold: number | null;
}

export interface MetricsReport {
	events: number;
	primary: string;
	overall: Record<string, number>;
	recent: Record<string, number>;
	oracle: Record<string, number>;
	share_of_oracle: Record<string, number>;
	n_clusters?: number;
}

export interface LearnerStatus {
	usecase: string;
	shard: number;
	running: boolean;
	error?: string | null;
	restoring?: boolean;
	learned?: number;
	dead_lettered?: number;
	model_errors?: number;
	events_per_s?: number;
	offsets?: Record<string, number>;
	lag?: Record<string, number>;
	checkpoint?: Record<string, unknown> | null;
	first_event_at?: number | null;
	last_event_at?: number | null;
	metrics?: MetricsReport;
}

export interface LearnerControl {
	usecase: string;
	learners: Array<Record<string, unknown>>;
}

export type Prediction = Record<string, unknown>;

export interface PredictAnswer {
	usecase: string;
	kind: 'incremental' | 'batch';
	prediction: Prediction;
	model_version: number;
	// incremental
	learned?: number;
	checkpoint_age_s?: number | null;
	source?: string;
	shards?: number;
	// batch
	cached?: boolean;
}

export interface ExplainAnswer {
	prediction: Prediction;
	contributions: Record<string, number>;
	model_version: number;
	explained_as: string;
}

export interface ModelInfo {
	usecase: string;
	features: Feature[];
	incremental: {
		model: string;
		params: Record<string, unknown>;
		checkpoints: Record<string, { version: number; age_s: number }>;
		fallback: Record<string, { version: number; learned: number }>;
	};
	batch: {
		version: number | null;
		reason?: string;
		run_id?: string;
		metrics?: Record<string, number>;
		feature_importance?: Record<string, number> | null;
		checked_at?: number;
	};
}

export interface SqlResult {
	columns: string[];
	rows: Array<Record<string, unknown>>;
	row_count: number;
	truncated: boolean;
	seconds: number;
}
