import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { trialToJson, type WireNumber } from '../../tune/index.js';
import { access } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * Tuning studies under /api/kiln/studies, so a worker on another machine joins a study
 * through the server without database credentials (tune/rest-storage.ts is the client).
 * Thin: zod-validate, check the ids exist, call the SQL study storage, which keeps the
 * concurrency protocol (tune/types.ts) exactly as it does for a worker on the database.
 */
const name = z.string().min(1).max(256);
const workerId = z.string().min(1).max(256);
const id = z.coerce.number().int().positive();
const studyParams = z.object({ studyId: id });
const trialParams = z.object({ trialId: id });
const paramValue = z.union([z.number(), z.string(), z.boolean(), z.null()]);
const wireNumber = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
const jsonObject = z.record(z.string(), z.unknown());
const distribution = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('float'),
    low: z.number(),
    high: z.number(),
    log: z.boolean(),
    step: z.number().positive().nullable(),
  }),
  z.object({
    kind: z.literal('int'),
    low: z.number().int(),
    high: z.number().int(),
    log: z.boolean(),
    step: z.number().int().positive(),
  }),
  z.object({ kind: z.literal('categorical'), choices: z.array(paramValue).min(1) }),
]);

const createBody = z
  .object({
    name,
    directions: z.array(z.enum(['minimize', 'maximize'])).min(1),
    spec: jsonObject,
    experimentId: z.string().nullable().optional(),
    parentRunId: z.string().nullable().optional(),
  })
  .strict();
const finishBody = z
  .object({
    workerId,
    state: z.enum(['COMPLETE', 'PRUNED', 'FAILED']),
    values: z.array(wireNumber).nullable(),
    constraints: z.array(wireNumber).nullable(),
    failReason: z.string().max(10_000).nullable(),
  })
  .strict();

const number = (v: WireNumber) => (typeof v === 'number' ? v : Number(v));

export async function studyRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const storage = context.workspace.studies;
  const study = async (params: unknown) => (await storage.getStudyById(studyParams.parse(params).studyId)).id;
  const trial = async (params: unknown) => {
    const { trialId } = trialParams.parse(params);
    await storage.requireTrial(trialId);
    return trialId;
  };

  app.get('/api/kiln/studies', access('viewer'), async (request) => {
    const query = z.object({ name: name.optional() }).parse(request.query);
    if (query.name === undefined) return { studies: await storage.listStudies() };
    const found = await storage.findStudy(query.name);
    return { studies: found ? [found] : [] };
  });

  app.post('/api/kiln/studies', access('editor'), async (request, reply) => {
    const body = createBody.parse(request.body);
    reply.status(201);
    return { study: await storage.createStudy(body) };
  });

  app.get('/api/kiln/studies/by-name/:name', access('viewer'), async (request) => ({
    study: await storage.getStudy(z.object({ name }).parse(request.params).name),
  }));

  app.put('/api/kiln/studies/:studyId/tracking', access('editor'), async (request) => {
    const body = z
      .object({ experimentId: z.string().min(1), parentRunId: z.string().min(1) })
      .parse(request.body);
    await storage.updateStudyTracking(await study(request.params), body.experimentId, body.parentRunId);
    return {};
  });

  app.post('/api/kiln/studies/:studyId/trials', access('editor'), async (request) => {
    const body = z
      .object({ workerId, maxTrials: z.number().int().positive().optional() })
      .parse(request.body);
    const created = await storage.createRunningTrial(
      await study(request.params),
      body.workerId,
      body.maxTrials,
    );
    return { trial: created ? trialToJson(created) : null };
  });

  app.post('/api/kiln/studies/:studyId/trials/enqueue', access('editor'), async (request) => {
    const body = z
      .object({ fixedParams: z.record(z.string(), paramValue), systemAttrs: jsonObject.default({}) })
      .parse(request.body);
    return {
      number: await storage.enqueueTrial(await study(request.params), body.fixedParams, body.systemAttrs),
    };
  });

  app.post('/api/kiln/studies/:studyId/trials/claim', access('editor'), async (request) => {
    const body = z.object({ workerId }).parse(request.body);
    const claimed = await storage.claimWaitingTrial(await study(request.params), body.workerId);
    return { trial: claimed ? trialToJson(claimed) : null };
  });

  app.post('/api/kiln/studies/:studyId/trials/search', access('viewer'), async (request) => {
    const body = z
      .object({
        afterId: z.number().int().min(0).default(0),
        refreshIds: z.array(z.number().int().positive()).max(100_000).default([]),
      })
      .parse(request.body ?? {});
    const trials = await storage.loadTrials(await study(request.params), body.afterId, body.refreshIds);
    return { trials: trials.map(trialToJson) };
  });

  app.post('/api/kiln/studies/:studyId/reap', access('editor'), async (request) => {
    const body = z.object({ gracePeriodMs: z.number().int().positive() }).parse(request.body);
    return { reaped: await storage.reapStaleTrials(await study(request.params), body.gracePeriodMs) };
  });

  app.get('/api/kiln/studies/:studyId/states', access('viewer'), async (request) => ({
    states: await storage.countStates(await study(request.params)),
  }));

  app.get('/api/kiln/studies/trials/:trialId', access('viewer'), async (request) => ({
    trial: trialToJson(await storage.getTrial(trialParams.parse(request.params).trialId)),
  }));

  app.put('/api/kiln/studies/trials/:trialId/params', access('editor'), async (request) => {
    const body = z
      .object({ params: z.record(z.string(), paramValue), distributions: z.record(z.string(), distribution) })
      .parse(request.body);
    await storage.setParams(await trial(request.params), body.params, body.distributions);
    return {};
  });

  app.put('/api/kiln/studies/trials/:trialId/intermediate', access('editor'), async (request) => {
    const body = z.object({ step: z.number().int().min(0), value: wireNumber }).parse(request.body);
    await storage.reportIntermediate(await trial(request.params), body.step, number(body.value));
    return {};
  });

  app.put('/api/kiln/studies/trials/:trialId/attrs', access('editor'), async (request) => {
    const body = z
      .object({ column: z.enum(['system_attrs', 'user_attrs']), attrs: jsonObject })
      .parse(request.body);
    await storage.setAttrs(await trial(request.params), body.column, body.attrs);
    return {};
  });

  app.put('/api/kiln/studies/trials/:trialId/run', access('editor'), async (request) => {
    const body = z.object({ runId: z.string().min(1).max(256) }).parse(request.body);
    await storage.setRunId(await trial(request.params), body.runId);
    return {};
  });

  app.post('/api/kiln/studies/trials/heartbeat', access('editor'), async (request) => {
    const body = z
      .object({ trialIds: z.array(z.number().int().positive()).max(10_000), workerId })
      .parse(request.body);
    await storage.heartbeat(body.trialIds, body.workerId);
    return {};
  });

  app.post('/api/kiln/studies/trials/:trialId/finish', access('editor'), async (request) => {
    const body = finishBody.parse(request.body);
    const recorded = await storage.finishTrial(await trial(request.params), body.workerId, body.state, {
      values: body.values?.map(number) ?? null,
      constraints: body.constraints?.map(number) ?? null,
      failReason: body.failReason,
    });
    return { recorded };
  });
}
