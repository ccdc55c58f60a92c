// The OpenAPI document (OpenAPI 3.1) matches the routes the coordinator registers, and the
// coordinator serves it as JSON.
import { describe, expect, it } from "vitest";
import { routes } from "../../src/coordinator/http/routes.ts";
import { openApiDocument } from "../../src/coordinator/http/openapi.ts";
import { COORDINATOR_ERROR_STATUS } from "../../src/coordinator/errors.ts";
import type { CoordinatorServices } from "../../src/coordinator/services.ts";
import { useCoordinator } from "../helpers/coordinator.ts";
import { EXAMPLE_ADMIN_TOKEN } from "../helpers/processes.ts";

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** Every (method, path) the router registers, with Express `:id` turned into OpenAPI `{id}`. */
function registeredRoutes(): { method: string; path: string }[] {
  // Route registration touches no service; handlers (never called here) would.
  const router = routes({} as CoordinatorServices);
  const out: { method: string; path: string }[] = [];
  for (const layer of router.stack) {
    if (!layer.route) continue;
    const path = layer.route.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const methods = new Set(
      layer.route.stack.map((l) => l.method.toLowerCase()).filter((m) => HTTP_METHODS.includes(m)),
    );
    for (const method of methods) out.push({ method, path });
  }
  return out;
}

function documented(): { method: string; path: string }[] {
  return Object.entries(openApiDocument.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => HTTP_METHODS.includes(m))
      .map((method) => ({ method, path })),
  );
}

const key = (r: { method: string; path: string }) => `${r.method.toUpperCase()} ${r.path}`;

function refsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) refsIn(x, out);
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "$ref" && typeof x === "string") out.push(x);
      else refsIn(x, out);
    }
  }
  return out;
}

function resolve(ref: string): unknown {
  expect(ref.startsWith("#/")).toBe(true);
  let node: unknown = openApiDocument;
  for (const part of ref.slice(2).split("/")) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

describe("OpenAPI document", () => {
  it("documents every route the router registers, and nothing it does not", () => {
    const registered = registeredRoutes().map(key).sort();
    expect(registered.length).toBeGreaterThanOrEqual(15);
    expect(registered).toContain("GET /api/v1/openapi.json");
    expect(registered).toContain("GET /api/v1/requests/{id}/certificate");
    const docs = documented().map(key).sort();
    for (const r of registered) expect(docs, `${r} is not in the OpenAPI document`).toContain(r);
    for (const d of docs) expect(registered, `${d} is documented but not routed`).toContain(d);
  });

  it("is well-formed: 3.1.0, unique operation ids, path parameters declared, every $ref resolves", () => {
    expect(openApiDocument.openapi).toBe("3.1.0");
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(openApiDocument.paths)) {
      const pathParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        const operationId = op.operationId as string;
        expect(typeof operationId, where).toBe("string");
        expect(ids.has(operationId), `duplicate operationId ${operationId}`).toBe(false);
        ids.add(operationId);
        const responses = op.responses as Record<string, unknown>;
        expect(
          Object.keys(responses).some((s) => /^2\d\d$/.test(s)),
          `${where} has no success response`,
        ).toBe(true);
        const params = ((op.parameters ?? []) as { name: string; in: string; required?: boolean }[]).filter(
          (p) => p.in === "path",
        );
        expect(params.map((p) => p.name).sort(), where).toEqual([...pathParams].sort());
        for (const p of params) expect(p.required, `${where} path parameter ${p.name}`).toBe(true);
      }
    }
    for (const ref of refsIn(openApiDocument)) expect(resolve(ref), `${ref} does not resolve`).toBeDefined();
  });

  it("errors are problem+json; authenticated operations name the bearer scheme", () => {
    expect(openApiDocument.components.securitySchemes.bearer).toMatchObject({
      type: "http",
      scheme: "bearer",
    });
    const problem = openApiDocument.components.schemas.Problem as {
      required: string[];
      properties: { code: { enum: string[] } };
    };
    expect(problem.required).toEqual(expect.arrayContaining(["type", "title", "status", "detail"]));
    expect(problem.properties.code.enum.sort()).toEqual(Object.keys(COORDINATOR_ERROR_STATUS).sort());
    for (const [path, item] of Object.entries(openApiDocument.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, r] of Object.entries(op.responses as Record<string, unknown>)) {
          if (!/^[45]\d\d$/.test(status)) continue;
          // Readiness answers 503 with the health document itself, so probes can show why.
          if (path === "/api/v1/health" && status === "503") continue;
          const resolved = resolve((r as { $ref: string }).$ref) as { content: Record<string, unknown> };
          expect(Object.keys(resolved.content), `${method} ${path} ${status}`).toEqual([
            "application/problem+json",
          ]);
        }
      }
    }
    const secured = Object.entries(openApiDocument.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, op]) => op.security)
        .map(([m]) => `${m.toUpperCase()} ${path}`),
    );
    expect(secured.sort()).toEqual([
      "GET /api/v1/ceremonies/{id}",
      "GET /api/v1/ceremonies/{id}/messages",
      "GET /api/v1/certificates",
      "GET /api/v1/certificates/{serial}",
      "GET /api/v1/changes",
      "GET /api/v1/health",
      "GET /api/v1/renewals/{id}",
      "GET /api/v1/requests",
      "GET /api/v1/requests/{id}",
      "GET /api/v1/requests/{id}/certificate",
      "GET /api/v1/signing/jobs/{id}",
      "GET /metrics",
      "POST /api/v1/ceremonies",
      "POST /api/v1/certificates/{serial}/revoke",
      "POST /api/v1/custodians/exchange",
      "POST /api/v1/requests",
    ]);
    // Authenticated reads (docs/security-model.md): custodians sign theirs; health is open to anyone.
    expect(openApiDocument.components.securitySchemes.signedRead).toMatchObject({
      type: "http",
      scheme: "TCA-Signed",
    });
    expect(openApiDocument.paths["/api/v1/health"]!.get!.security).toContainEqual({});
    expect(openApiDocument.paths["/metrics"]!.get!.security).toEqual([{ bearer: [] }]);
    const submit = openApiDocument.paths["/api/v1/requests"]!.post!;
    expect(Object.keys((submit.requestBody as { content: object }).content)).toEqual(
      expect.arrayContaining(["application/json", "application/pkcs10"]),
    );
  });
});

describe("GET /api/v1/openapi.json", () => {
  const coordinator = useCoordinator("tca-openapi-");

  it("serves the document as JSON, unauthenticated", async () => {
    const res = await fetch(`${coordinator.url}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = JSON.parse(await res.text()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
  });

  it("an error the document describes comes back as the Problem schema says", async () => {
    const res = await fetch(`${coordinator.url}/api/v1/requests/00000000-0000-0000-0000-000000000000`, {
      headers: { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 404,
      code: "NOT_FOUND",
      title: expect.any(String),
      type: expect.any(String),
      detail: expect.stringMatching(/no request/),
    });
  });
});
