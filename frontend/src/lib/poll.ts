/**
 * Call `tick` now and then every `everyMs` after the previous call finished (never two at once),
 * until the returned function is called. A failing tick does not stop the polling: the next one
 * may succeed (the stack restarting, a learner coming back), and `onError` shows why meanwhile.
 */
export function poll(tick: () => Promise<void>, everyMs: number, onError: (e: unknown) => void = () => {}): () => void {
	let stopped = false;
	let timer: ReturnType<typeof setTimeout> | undefined;
	const run = async () => {
		if (stopped) return;
		try {
			await tick();
		} catch (e) {
			if (!stopped) onError(e);
		}
		if (!stopped) timer = setTimeout(run, everyMs);
	};
	void run();
	return () => {
		stopped = true;
		if (timer !== undefined) clearTimeout(timer);
	};
}
