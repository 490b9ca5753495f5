/** What the whole UI shares: the API client and the bearer token (kept in this browser only). */
import { makeApi } from './api/client';

const KEY = 'rtml.api-token';

function stored(): string {
	try {
		return localStorage.getItem(KEY) ?? '';
	} catch {
		return '';
	}
}

export const session = $state({ token: stored() });

export function setToken(token: string): void {
	session.token = token.trim();
	try {
		if (session.token) localStorage.setItem(KEY, session.token);
		else localStorage.removeItem(KEY);
	} catch {
		// private mode: the token lives as long as the page
	}
}

export const api = makeApi({ token: () => session.token });
