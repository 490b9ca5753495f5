/**
 * Where the stack's own UIs are: what the API says (`GET /api/v1/links`, from its settings),
 * else `rtml up`'s default ports on the host that serves this page. VITE_RTML_RAY_DASHBOARD_URL,
 * VITE_RTML_MLFLOW_URL or VITE_RTML_PROMETHEUS_URL at build time override both (a cluster whose
 * consoles sit behind other addresses than the API sees).
 */
import type { Links } from './api/types';

export function stackLinks(host: string, given: Links | null = null, env: Record<string, string | undefined> = import.meta.env) {
	const h = host || '127.0.0.1';
	return [
		{ name: 'Ray dashboard', url: env.VITE_RTML_RAY_DASHBOARD_URL || given?.ray_dashboard || `http://${h}:8265` },
		{ name: 'MLflow', url: env.VITE_RTML_MLFLOW_URL || given?.mlflow || `http://${h}:5000` },
		{ name: 'Prometheus', url: env.VITE_RTML_PROMETHEUS_URL || given?.prometheus || `http://${h}:9090` },
		{ name: 'API docs', url: '/docs' },
	];
}
