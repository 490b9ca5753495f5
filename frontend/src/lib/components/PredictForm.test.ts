import { fireEvent, render } from '@testing-library/svelte';
import { expect, test } from 'vitest';
import doc from '../api/openapi.json';
import { fieldsOf, fromRaw, toRaw } from '../schemaForm';
import PredictForm from './PredictForm.svelte';

test('renders an input per field and edits flow back to the event', async () => {
	const fields = fieldsOf(doc, 'eta');
	const raw = toRaw(fields, { weather: 'rain', distance_km: 3, incident_reported: false });
	const view = render(PredictForm, { fields, raw, errors: { trip_id: 'required' }, id: 'f' });
	expect(view.container.querySelectorAll('label').length).toBe(fields.length);
	const weather = view.container.querySelector<HTMLSelectElement>('#f-weather')!;
	expect(weather.value).toBe('rain');
	expect([...weather.options].map((o) => o.value)).toContain('storm');
	expect(view.getByText('required')).toBeTruthy();

	const distance = view.container.querySelector<HTMLInputElement>('#f-distance_km')!;
	await fireEvent.input(distance, { target: { value: '7.5' } });
	const incident = view.container.querySelector<HTMLInputElement>('#f-incident_reported')!;
	await fireEvent.click(incident);
	const { event } = fromRaw(fields, raw);
	expect(event.distance_km).toBe(7.5);
	expect(event.incident_reported).toBe(true);
});
