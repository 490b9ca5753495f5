/**
 * What the issue asks of the Batch tab that the API does not offer yet. The tab says so in the
 * page instead of inventing calls; when an endpoint appears, its part of the tab is built and
 * its line goes from here.
 */
export const MISSING_BATCH = [
	'start a Tune sweep and follow its progress (e.g. POST /api/v1/{usecase}/batch/sweeps, GET …/sweeps/{id})',
	'the trials of a sweep with their parameters and scores (table and parallel-coordinates view)',
	'the challengers beside the champion, with their holdout scores (registry versions)',
	'promote a version to champion / roll back to the previous one (with the token)',
	'evaluation curves of the champion on the holdout: confusion matrix, ROC and precision–recall (tfd), predicted vs actual and residuals (eta), cluster sizes and a 2-D projection (ecci)',
];

export const MISSING_OTHER = [
	'the addresses of the Ray dashboard, MLflow and Prometheus (the Overview links to their default local ports; set VITE_RTML_*_URL at build time otherwise)',
	'the lake tables with their column types and row counts (the SQL tab finds each table\'s columns with a "LIMIT 0" query instead)',
];
