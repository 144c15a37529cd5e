import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import {
  checkAccess,
  parseScope,
  type Resource,
  type Role,
  roleAtLeast,
  type TokenInfo,
  TokenVerifier,
} from '../auth/index.js';
import type { Store } from '../store/index.js';

/**
 * Access control for every route. Each route declares what it needs in its options,
 * `{ config: { access: { role, resources } } }` (build it with `access(...)`); a route
 * registered without a declaration makes `buildApp` fail, so none can be left open by
 * omission. `public` is a declaration too (the health check a load balancer polls).
 *
 * With auth on, two hooks decide, both before the handler runs:
 * - onRequest: a token must come as `Authorization: Bearer <token>` (MLFLOW_TRACKING_TOKEN)
 *   or as the password of HTTP Basic (MLFLOW_TRACKING_USERNAME / _PASSWORD); else 401
 *   UNAUTHENTICATED. Its role must reach the route's; else 403 PERMISSION_DENIED. Nothing of
 *   the body has been read yet.
 * - preHandler, only for a token scoped to an experiment or a model: the route's `resources`
 *   names what the request touches (which needs the parsed body: a run id in a log-batch),
 *   and each must lie in the token's scope; else 403.
 * A refusal's body is `{ error_code, message }` and its message names roles and scopes only.
 *
 * With auth off (loopback, no `--auth`) every request passes and the acting user is the
 * declared one: the user name of HTTP Basic, else `anonymous`.
 */
export interface RouteAccess {
  role: Role | 'public';
  /** What the request touches; nothing (or []) means it reaches across everything. */
  resources?: (request: FastifyRequest) => Resource[] | Promise<Resource[]>;
}

/** Who is calling: proven by a token with auth on, declared otherwise. */
export interface Principal {
  user: string;
  token?: TokenInfo;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyInstance {
    /** Every route registered, with its access declaration (walked by the access test). */
    declaredRoutes: { method: string; url: string; access: RouteAccess }[];
  }
}

/** Route options declaring who may call: `app.get('/x', access('viewer', resolver), handler)`. */
export function access(
  role: RouteAccess['role'],
  resources?: RouteAccess['resources'],
): { config: { access: RouteAccess } } {
  return { config: { access: { role, ...(resources ? { resources } : {}) } } };
}

export interface AccessControlOptions {
  /** Require a token on every route (except `public` ones). */
  auth: boolean;
  store: Store;
}

/** Installs the declaration check and the hooks on the root app, before any route plugin. */
export function installAccessControl(app: FastifyInstance, options: AccessControlOptions): void {
  const declared: FastifyInstance['declaredRoutes'] = [];
  app.decorate('declaredRoutes', declared);
  app.decorateRequest('principal', undefined as unknown as Principal);
  app.addHook('onRoute', (route: RouteOptions) => {
    const declaration = (route.config as { access?: RouteAccess } | undefined)?.access;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!declaration) {
      throw new Error(
        `route ${methods.join(',')} ${route.url} declares no access (add access(role, resources) to its options)`,
      );
    }
    for (const method of methods) declared.push({ method, url: route.url, access: declaration });
  });

  if (!options.auth) {
    app.addHook('onRequest', async (request) => {
      request.principal = { user: declaredUser(request) };
    });
    return;
  }

  const verifier = new TokenVerifier(options.store.db);
  app.addHook('onRequest', async (request, reply) => {
    const declaration = request.routeOptions.config?.access;
    if (declaration?.role === 'public') {
      request.principal = { user: 'anonymous' };
      return;
    }
    const presented = presentedToken(request);
    if (!presented) {
      return refuse(
        reply,
        401,
        'UNAUTHENTICATED',
        'this server requires a token: send Authorization: Bearer <token> (MLFLOW_TRACKING_TOKEN or KILN_TOKEN), or the token as the HTTP Basic password',
      );
    }
    const verdict = await verifier.verify(presented);
    if (!verdict.ok) return refuse(reply, 401, 'UNAUTHENTICATED', verdict.message);
    request.principal = { user: verdict.token.user, token: verdict.token };
    // Unrouted requests (404s) carry no declaration: a valid token is all they need.
    if (!declaration) return;
    if (!roleAtLeast(verdict.token.role, declaration.role)) {
      return refuse(
        reply,
        403,
        'PERMISSION_DENIED',
        `this needs the ${declaration.role} role; the token has ${verdict.token.role}`,
      );
    }
  });
  app.addHook('preHandler', async (request, reply) => {
    const declaration = request.routeOptions.config?.access;
    const token = request.principal?.token;
    if (!declaration || declaration.role === 'public' || !token || token.scope === '*') return;
    const resources = declaration.resources ? await declaration.resources(request) : [];
    const decision = checkAccess(grantOf(token), declaration.role, resources);
    if (!decision.ok) return refuse(reply, 403, 'PERMISSION_DENIED', decision.message);
  });
}

function grantOf(token: TokenInfo) {
  return { role: token.role, scope: parseScope(token.scope) };
}

function refuse(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="kiln", Basic realm="kiln"');
  return reply.status(status).send({ error_code: code, message });
}

/** `Authorization: Bearer <token>`, or the password of `Authorization: Basic`. */
function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, value] = [
    header.slice(0, header.indexOf(' ')).toLowerCase(),
    header.slice(header.indexOf(' ') + 1).trim(),
  ];
  if (scheme === 'bearer') return value || undefined;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : decoded.slice(colon + 1) || undefined;
  }
  return undefined;
}

/** Without auth: the user name an MLflow client sends with HTTP Basic, else 'anonymous'. */
function declaredUser(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const user = decoded.slice(0, Math.max(0, decoded.indexOf(':'))).trim();
    if (user && user.length <= 256) return user;
  }
  return 'anonymous';
}

/** The acting user of a request, for audit entries and a run's user_id. */
export function actorOf(request: FastifyRequest): { user: string } {
  return { user: request.principal?.user ?? declaredUser(request) };
}

/** True when the request's user is proven by a token (auth on), not merely declared. */
export function isProven(request: FastifyRequest): boolean {
  return request.principal?.token !== undefined;
}
