/**
 * Subscriptions over HTTP: `POST /v1/subscriptions` keeps a webhook of the caller's tenant for
 * the events of some types (its URL checked as a job's callback URL is), `GET` lists or shows
 * the tenant's own, `DELETE` removes one and stops its pending deliveries. Another tenant's
 * subscription is a 404, like an unknown one.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { SubscriptionRecord } from "../../store/store.js";
import { isSubscriptionId, parseSubscription } from "../../subscriptions/subscription.js";
import { decodeCursor, encodeCursor, listingQuery, refuseIssues } from "../listing.js";
import { ProblemError, storeUnavailable, validationProblem } from "../problems.js";
import { checkReceiver } from "../receiver-check.js";
import type { ServerDeps } from "../server.js";
import { origin } from "../urls.js";

const LIST_PARAMETERS = new Set(["limit", "cursor"]);
const subscriptionPath = (id: string) => `/v1/subscriptions/${id}`;
const notFound = (id: string) => new ProblemError("not-found", `no subscription ${id}`);

export function subscriptionRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { store } = deps;

  app.post("/v1/subscriptions", async (request, reply) => {
    if (request.body === undefined) throw new ProblemError("invalid-json", "a JSON body is required");
    const parsed = parseSubscription(request.body, request.tenantId);
    if ("issues" in parsed) throw validationProblem(parsed.issues);
    const { subscription } = parsed;
    await checkReceiver(request, deps, {
      url: subscription.url,
      path: "/url",
      verify: deps.config.callbackVerify,
      ping: { types: subscription.types },
    });
    let created;
    try {
      created = await store.createSubscription({ subscription, now: deps.now() });
    } catch (error) {
      request.log.error({ err: error }, "a subscription could not be committed");
      throw storeUnavailable("the subscription could not be stored; it was not created");
    }
    return reply
      .code(201)
      .header("location", `${origin(request, deps.config)}${subscriptionPath(created.id)}`)
      .header("cache-control", "no-store")
      .send(represent(created, request, deps));
  });

  app.get("/v1/subscriptions", async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const { issues, limit } = listingQuery(query, LIST_PARAMETERS);
    let before: { createdAt: number; id: string } | undefined;
    if (query.cursor !== undefined) {
      before = decodeCursor(query.cursor, isSubscriptionId);
      if (before === undefined)
        issues.push({ path: "cursor", message: "is not a cursor this server issued" });
    }
    refuseIssues(issues);
    const rows = await store.listSubscriptions({
      tenantId: request.tenantId,
      limit: limit + 1,
      ...(before ? { before } : {}),
    });
    const page = rows.slice(0, limit);
    reply.header("cache-control", "no-store");
    return {
      items: page.map((subscription) => represent(subscription, request, deps)),
      nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!) : null,
    };
  });

  app.get("/v1/subscriptions/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    const subscription = isSubscriptionId(id)
      ? await store.getSubscription({ tenantId: request.tenantId, id })
      : null;
    if (!subscription) throw notFound(id.slice(0, 64));
    reply.header("cache-control", "no-store");
    return represent(subscription, request, deps);
  });

  app.delete("/v1/subscriptions/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    const deleted =
      isSubscriptionId(id) &&
      (await store.deleteSubscription({ tenantId: request.tenantId, id, now: deps.now() }));
    if (!deleted) throw notFound(id.slice(0, 64));
    return reply.code(204).send();
  });
}

function represent(
  subscription: SubscriptionRecord,
  request: FastifyRequest,
  deps: ServerDeps,
): Record<string, unknown> {
  return {
    id: subscription.id,
    url: subscription.url,
    types: subscription.types,
    ...(subscription.filter ? { filter: subscription.filter } : {}),
    createdAt: new Date(subscription.createdAt).toISOString(),
    links: { self: `${origin(request, deps.config)}${subscriptionPath(subscription.id)}` },
  };
}
