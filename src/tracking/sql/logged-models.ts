import { LIMITS } from '../limits.js';
import { invalidValue, requireString } from '../validation.js';
import type { SqlContext } from './context.js';
import { assertRunActive, runRow, upsertTag } from './rows.js';

/** The run tag in which MLflow clients find every model logged to a run (a JSON list). */
export const LOGGED_MODELS_TAG = 'mlflow.log-model.history';

/**
 * MLflow's record_logged_model: read the history tag, append, write it back, all in one
 * transaction, so two concurrent calls both land (on SQLite the write queue orders them;
 * on Postgres the run row is locked FOR UPDATE first).
 */
export async function logModel(
  ctx: SqlContext,
  runId: string,
  model: Record<string, unknown>,
): Promise<void> {
  requireString(runId, 'run_id');
  checkLoggedModel(model);
  await ctx.transaction(async (trx) => {
    if (ctx.dialect === 'postgres') {
      await trx.selectFrom('runs').select('run_uuid').where('run_uuid', '=', runId).forUpdate().execute();
    }
    const run = await runRow(trx, runId);
    assertRunActive(run);
    const previous = await trx
      .selectFrom('tags')
      .select('value')
      .where('run_uuid', '=', runId)
      .where('key', '=', LOGGED_MODELS_TAG)
      .executeTakeFirst();
    let history: unknown[] = [];
    if (previous) {
      try {
        const parsed = JSON.parse(previous.value);
        if (Array.isArray(parsed)) history = parsed;
      } catch {
        // A hand-set tag that is not a JSON list: MLflow would fail here; kiln starts over.
      }
    }
    history.push(model);
    const value = JSON.stringify(history);
    if (value.length > LIMITS.tagValueLength) {
      throw invalidValue(
        'model_json',
        `${value.length} characters of history`,
        `the run's '${LOGGED_MODELS_TAG}' tag would be ${value.length} characters, over MLflow's tag limit of ${LIMITS.tagValueLength}`,
      );
    }
    await upsertTag(trx, runId, LOGGED_MODELS_TAG, value);
  });
}

/** An MLmodel as JSON: an object with artifact_path and flavors, as MLflow's Model.to_dict gives. */
export function checkLoggedModel(model: unknown): asserts model is Record<string, unknown> {
  if (typeof model !== 'object' || model === null || Array.isArray(model)) {
    throw invalidValue('model_json', model, 'expected a JSON object');
  }
  for (const field of ['artifact_path', 'flavors']) {
    if (!(field in model)) throw invalidValue('model_json', model, `missing '${field}'`);
  }
}
