/**
 * Where the stack's own UIs are. The API does not say (no endpoint gives these addresses), so
 * the defaults are `rtml up`'s default ports on the host that serves this page; set
 * VITE_RTML_RAY_DASHBOARD_URL, VITE_RTML_MLFLOW_URL or VITE_RTML_PROMETHEUS_URL when building
 * for other addresses.
 */
export function stackLinks(host: string, env: Record<string, string | undefined> = import.meta.env) {
	const h = host || '127.0.0.1';
	return [
		{ name: 'Ray dashboard', url: env.VITE_RTML_RAY_DASHBOARD_URL || `http://${h}:8265` },
		{ name: 'MLflow', url: env.VITE_RTML_MLFLOW_URL || `http://${h}:5000` },
		{ name: 'Prometheus', url: env.VITE_RTML_PROMETHEUS_URL || `http://${h}:9090` },
		{ name: 'API docs', url: '/docs' },
	];
}
