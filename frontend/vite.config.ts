import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

// `npm run dev` proxies the API to a running stack: RTML_API_URL (default: `rtml up`'s API).
const api = process.env.RTML_API_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
	plugins: [sveltekit()],
	server: {
		proxy: {
			'/api': api,
			'/openapi.json': api,
			'/docs': api,
		},
	},
	test: {
		include: ['src/**/*.test.ts'],
		environment: 'jsdom',
	},
	// Svelte's browser build under Vitest, so components mount in jsdom.
	resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
});
