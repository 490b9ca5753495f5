// Everything renders in the browser: the UI is static files that talk to the API.
export const ssr = false;
export const prerender = false;
