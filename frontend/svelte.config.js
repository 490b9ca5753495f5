import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/**
 * A single-page app: every route renders in the browser (ssr = false in +layout.ts), and the
 * build is static files plus one fallback page. The Serve ingress serves them at / and answers
 * any path that is not a file and not under /api with index.html (ray_apps/serving/routes.py).
 */
export default {
	preprocess: vitePreprocess(),
	kit: {
		adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html', strict: true }),
	},
};
