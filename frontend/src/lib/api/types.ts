/**
 * The API's answers under the names the UI reads them by: aliases of the types generated from
 * the API's own OpenAPI document (schema.d.ts, `npm run gen:api`), none written by hand.
 */
import type { components, paths } from './schema';

type Schemas = components['schemas'];
type Answer<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
	responses: { 200: { content: { 'application/json': infer A } } };
}
	? A
	: never;

export type Health = Schemas['Health'];
export type UseCaseInfo = Schemas['UseCaseInfo'];
export type Links = Schemas['Links'];
export type SqlResult = Schemas['SqlResult'];
export type LakeTable = Schemas['LakeTable'];
export type LearnerStatus = Schemas['LearnerStatus'];
/** What start, stop (each shard's status) and reset (what each shard forgot) answer. */
export type LearnerControl = Schemas['Learners'] | Schemas['LearnersReset'];
export type ModelInfo = Schemas['ModelInfo'];
export type Versions = Schemas['Versions'];
export type SweepJob = Schemas['SweepJob'];
export type SweepStatus = Schemas['SweepStatus'];
export type Trial = Schemas['Trial'];
export type Evaluation = Schemas['Evaluation'];
export type RocPoint = Schemas['RocPoint'];
export type PrPoint = Schemas['PrPoint'];
export type PredictedPoint = Schemas['PredictedPoint'];
export type ProjectedPoint = Schemas['ProjectedPoint'];
export type EntityLookup = Schemas['EntityLookup'];
export type EntityMemory = Schemas['EntityMemory'];

type PredictPath = Extract<keyof paths, `/api/v1/${string}/${'incremental' | 'batch'}/predict`>;
/** A prediction answer of any use case, by either model: `prediction` for one event,
 * `predictions` (in order) for a list. */
export type PredictAnswer = Answer<PredictPath, 'post'>;
export type ExplainAnswer = Answer<Extract<keyof paths, `/api/v1/${string}/batch/explain`>, 'post'>;
