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
		/** champion versions refused because their files fail rtml's signature: version → why */
		refused?: Record<string, string>;
	};
}

export interface SqlResult {
	columns: string[];
	rows: Array<Record<string, unknown>>;
	row_count: number;
	truncated: boolean;
	seconds: number;
}

export interface SqlTable {
	name: string;
	rows: number;
	files: number;
	version: number;
	partition_by: string[];
	columns: Array<{ name: string; type: string }>;
}

export interface Links {
	ray_dashboard: string;
	mlflow: string;
	prometheus: string;
}

/** A registered version of the use case's batch model (`GET …/batch/versions`). */
export interface VersionRow {
	version: number;
	run_id: string;
	aliases: string[];
	metrics: Record<string, number>;
	gate: 'promoted' | 'rejected' | 'first' | null | string;
	created: number;
	share_of_oracle: number | null;
	gate_champion_version: number | null;
	gate_champion_score: number | null;
	params: string | null;
}

export interface Versions {
	usecase: string;
	model: string;
	primary_metric: string;
	higher_is_better: boolean;
	versions: VersionRow[];
}

export interface SweepJob {
	job_id: string;
	status: 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'STOPPED' | string;
	message?: string | null;
	entrypoint: string;
	start_time: number | null;
	end_time: number | null;
}

export interface SweepProgress {
	done: number;
	total: number;
	trial?: string;
	valid_loss?: number | null;
	rounds?: number | null;
	[metric: string]: unknown;
}

export interface SweepStatus extends SweepJob {
	sweep: string | null;
	done: number;
	total: number | null;
	progress: SweepProgress[];
	result: {
		version: number;
		holdout: Record<string, number>;
		oracle: Record<string, number>;
		gate: { decision: string; metric: string; candidate_score: number; champion_version: number | null; champion_score: number | null };
		best_config: Record<string, unknown>;
		seconds: number;
	} | null;
	said: string[];
}

export interface Trial {
	run_id: string;
	sweep: string | null;
	status: string;
	params: Record<string, string>;
	metrics: Record<string, number>;
	start_time: number;
}

export interface Evaluation {
	usecase: string;
	version: number;
	rows: number;
	task: string;
	scores: Record<string, number>;
	oracle: Record<string, number>;
	classification?: {
		threshold: number;
		confusion: { tp: number; fp: number; tn: number; fn: number };
		positives: number;
		roc?: Array<{ fpr: number; tpr: number; threshold: number | null }>;
		pr?: Array<{ recall: number; precision: number; threshold: number | null }>;
	};
	regression?: {
		points: Array<{ actual: number; predicted: number }>;
		residuals: { edges: number[]; counts: number[] };
		mean_residual: number;
	};
	clustering?: {
		sizes: Record<string, number>;
		projection?: Array<{ x: number; y: number; cluster: number; segment: string }>;
		explained_variance?: number[];
	};
}
