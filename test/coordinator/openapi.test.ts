// The OpenAPI document (src/coordinator/http/openapi.ts) matches the routes the coordinator
// registers, is valid OpenAPI 3.1, describes what the coordinator really answers, and is served as JSON.
import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import Ajv from "ajv";
import type { RunningCoordinator } from "../../src/coordinator/server.ts";
import { signReadHeader } from "../../src/protocol/signed-read.ts";
import {
  approval,
  exchangeUntil,
  makeCsr,
  type InProcessCa,
  startHttpCa,
  completeCeremony,
} from "../helpers/in-process-ca.ts";
import { routes } from "../../src/coordinator/http/routes.ts";
import { openApiDocument } from "../../src/coordinator/http/openapi.ts";
import { COORDINATOR_ERROR_STATUS } from "../../src/coordinator/errors.ts";
import type { CoordinatorServices } from "../../src/coordinator/services.ts";
import { useCoordinator } from "../helpers/coordinator.ts";
import { createAcme } from "../../src/acme/router.ts";
import { DEFAULT_VALIDATION } from "../../src/acme/context.ts";
import { EXAMPLE_ADMIN_TOKEN, EXAMPLE_REQUESTER_TOKEN } from "../helpers/processes.ts";

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/**
 * Every (method, path) the coordinator's router registers, and the ACME server's admin routes under
 * /api/v1 (its RFC 8555 routes are documented by RFC 8555 and docs/acme.md), with Express `:id`
 * turned into OpenAPI `{id}`.
 */
async function registeredRoutes(): Promise<{ method: string; path: string }[]> {
  // Route registration touches no service; handlers (never called here) would. ACME migrates its
  // tables first, which this stand-in store skips.
  const acme = await createAcme(
    {
      config: { config: { acme: { profiles: ["server"] }, profiles: {} } },
      store: { migrateModule: async () => undefined },
    } as unknown as CoordinatorServices,
    { validation: DEFAULT_VALIDATION },
  );
  const apiLayers = acme.stack.filter((l) => l.route?.path.startsWith("/api/v1/"));
  const out: { method: string; path: string }[] = [];
  for (const layer of [...routes({} as CoordinatorServices).stack, ...apiLayers]) {
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
  it("documents every route the router registers, and nothing it does not", async () => {
    const registered = (await registeredRoutes()).map(key).sort();
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
      "DELETE /api/v1/acme/eab-keys/{keyId}",
      "GET /api/v1/acme/eab-keys",
      "GET /api/v1/audit",
      "GET /api/v1/ca/csr/{id}",
      "GET /api/v1/ceremonies/{id}",
      "GET /api/v1/ceremonies/{id}/messages",
      "GET /api/v1/certificates",
      "GET /api/v1/certificates/{serial}",
      "GET /api/v1/changes",
      "GET /api/v1/health",
      "GET /api/v1/lifecycle/{id}",
      "GET /api/v1/lifecycle/{id}/messages",
      "GET /api/v1/renewals/{id}",
      "GET /api/v1/requests",
      "GET /api/v1/requests/{id}",
      "GET /api/v1/requests/{id}/certificate",
      "GET /api/v1/roster",
      "GET /api/v1/signing/jobs/{id}",
      "GET /metrics",
      "POST /api/v1/acme/eab-keys",
      "POST /api/v1/audit/checkpoints",
      "POST /api/v1/ca/certificate",
      "POST /api/v1/ca/csr",
      "POST /api/v1/ceremonies",
      "POST /api/v1/certificates/{serial}/revoke",
      "POST /api/v1/custodians/exchange",
      "POST /api/v1/lifecycle",
      "POST /api/v1/lifecycle/{id}/cancel",
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

// --- Validation with ajv ---------------------------------------------------------------------
// The ajv in node_modules is 6.x (it comes with eslint), which implements JSON Schema draft-07, not
// the draft 2020-12 that OpenAPI 3.1 uses. Two consequences, both handled here:
// 1. The official OpenAPI 3.1 schema is vendored as test/fixtures/openapi-3.1-schema.json: the file
//    schemas/v3.1/schema.json of github.com/OAI/OpenAPI-Specification at commit 1f0334d1 ($id
//    https://spec.openapis.org/oas/3.1/schema/2022-10-07), byte for byte. `forDraft7` rewrites, in
//    memory, its four 2020-12 keywords into draft-07 equivalents: `$dynamicRef: "#meta"` → a $ref to
//    its `schema` definition (the only dynamic anchor), `dependentSchemas` → `dependencies`, and
//    `unevaluatedProperties: false` → `propertyNames` listing every property the object's own
//    subschemas (properties, patternProperties, $ref, allOf/anyOf/oneOf, if/then/else) could
//    evaluate. That last one is a little looser than 2020-12 (a name allowed by a branch that did
//    not match passes), but still refuses unknown or misspelt fields; the tests below show it does.
//    And a $ref with sibling keywords becomes an allOf (ajv 6 would skip the siblings).
// 2. The component schemas zod generates must use only draft-07 keywords, so that ajv 6 checks them
//    completely: a test asserts it.
type Node = Record<string, unknown>;
const OAS_SCHEMA = JSON.parse(
  readFileSync(new URL("../fixtures/openapi-3.1-schema.json", import.meta.url), "utf8"),
) as Node;

function forDraft7(root: Node): Node {
  const at = (ref: string): Node => {
    let n: unknown = root;
    for (const part of ref.slice(2).split("/")) n = (n as Node)[part];
    return n as Node;
  };
  const evaluable = (n: Node, seen = new Set<Node>()): { names: string[]; patterns: string[] } => {
    const out = { names: [] as string[], patterns: [] as string[] };
    if (seen.has(n)) return out;
    seen.add(n);
    out.names.push(...Object.keys((n.properties as Node | undefined) ?? {}));
    out.patterns.push(...Object.keys((n.patternProperties as Node | undefined) ?? {}));
    const subs: Node[] = [];
    if (typeof n.$ref === "string") subs.push(at(n.$ref));
    for (const k of ["allOf", "anyOf", "oneOf"]) subs.push(...((n[k] as Node[] | undefined) ?? []));
    for (const k of ["if", "then", "else"]) if (n[k]) subs.push(n[k] as Node);
    subs.push(...Object.values((n.dependentSchemas as Record<string, Node> | undefined) ?? {}));
    for (const sub of subs) {
      const e = evaluable(sub, seen);
      out.names.push(...e.names);
      out.patterns.push(...e.patterns);
    }
    return out;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!v || typeof v !== "object") return v;
    const n = v as Node;
    const out: Node = {};
    for (const [k, x] of Object.entries(n)) {
      if (k === "$dynamicAnchor" || k === "$schema" || k === "$id") continue;
      if (k === "$dynamicRef") {
        expect(x).toBe("#meta");
        out.$ref = "#/$defs/schema";
      } else if (k === "dependentSchemas") out.dependencies = walk(x);
      else if (k === "$ref" && typeof x === "string")
        out.$ref = x.replace("/dependentSchemas/", "/dependencies/");
      else if (k === "unevaluatedProperties") {
        expect(x).toBe(false);
        const { names, patterns } = evaluable(n);
        const allowed = {
          anyOf: [{ enum: [...new Set(names)] }, ...patterns.map((pattern) => ({ pattern }))],
        };
        out.propertyNames = n.propertyNames ? { allOf: [walk(n.propertyNames), allowed] } : allowed;
      } else if (k === "propertyNames" && n.unevaluatedProperties !== undefined) continue;
      else out[k] = walk(x);
    }
    // ajv 6 ignores the siblings of a $ref it reaches through another $ref: move the $ref into allOf.
    if (typeof out.$ref === "string" && Object.keys(out).some((k) => k !== "$ref" && k !== "$comment")) {
      out.allOf = [{ $ref: out.$ref }, ...((out.allOf as Node[] | undefined) ?? [])];
      delete out.$ref;
    }
    return out;
  };
  return { $schema: "http://json-schema.org/draft-07/schema#", ...(walk(root) as Node) };
}

function newAjv(): Ajv.Ajv {
  const ajv = new Ajv({ allErrors: true, extendRefs: true });
  ajv.addFormat("media-range", /^[\w.+*-]+\/[\w.+*-]+(\s*;.*)?$/);
  return ajv;
}

describe("OpenAPI document against the OpenAPI 3.1 schema", () => {
  const ajv = newAjv();
  const validateOas = ajv.compile(forDraft7(OAS_SCHEMA));
  const docJson = () => JSON.parse(JSON.stringify(openApiDocument)) as Node;

  it("is valid", () => {
    const ok = validateOas(docJson());
    expect(ok, ajv.errorsText(validateOas.errors, { separator: "\n" })).toBe(true);
  });

  it("the check refuses what 3.1 refuses: a misspelt field, a missing title, a bad parameter", () => {
    const misspelt = docJson();
    ((misspelt.paths as Node)["/api/v1/requests"] as Node).get = {
      ...(((misspelt.paths as Node)["/api/v1/requests"] as Node).get as Node),
      reponses: {},
    };
    expect(validateOas(misspelt)).toBe(false);
    const untitled = docJson();
    delete (untitled.info as Node).title;
    expect(validateOas(untitled)).toBe(false);
    const optionalPath = docJson();
    const op = ((optionalPath.paths as Node)["/api/v1/requests/{id}"] as Node).get as Node;
    (op.parameters as Node[])[0] = { ...(op.parameters as Node[])[0], required: false };
    expect(validateOas(optionalPath)).toBe(false);
    const extended = docJson();
    (extended.info as Node)["x-logo"] = "tca.svg";
    expect(validateOas(extended)).toBe(true);
  });

  it("its component schemas are draft-07-checkable JSON Schemas that ajv compiles", () => {
    const text = JSON.stringify(openApiDocument.components.schemas);
    for (const k of ["prefixItems", "unevaluatedProperties", "$dynamicRef", "dependentSchemas", "$defs"])
      expect(text, `${k} needs a 2020-12 validator`).not.toContain(`"${k}"`);
    const checker = newAjv();
    checker.addSchema({ components: { schemas: openApiDocument.components.schemas } }, "tca");
    for (const name of Object.keys(openApiDocument.components.schemas))
      expect(() => checker.compile({ $ref: `tca#/components/schemas/${name}` }), name).not.toThrow();
  });
});

// --- Real answers against the documented schemas -----------------------------------------------

const NAMES = ["alice", "bob", "carol"];
const ADMIN = { authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
const REQUESTER = { authorization: `Bearer ${EXAMPLE_REQUESTER_TOKEN}` };

describe("real answers match the schemas documented for them", () => {
  let coordinator: RunningCoordinator;
  let ca: InProcessCa;
  let url: string;
  let ceremonyId: string;
  const issued: { id: string; serial: string }[] = [];
  const validator = newAjv();
  validator.addSchema({ components: { schemas: openApiDocument.components.schemas } }, "tca");
  const checked = new Set<string>();

  const signed = (who: string, method: string, path: string) => ({
    authorization: signReadHeader(ca.signers.get(who)!, method, path, Date.now()),
  });

  /** Validates `res` with the schema the document gives for this operation, status and media type. */
  async function conforms(method: string, template: string, res: Response): Promise<Node> {
    const op = openApiDocument.paths[template]?.[method.toLowerCase()];
    expect(op, `${method} ${template} is not documented`).toBeDefined();
    let response = (op!.responses as Record<string, Node>)[String(res.status)];
    expect(response, `${method} ${template} does not document status ${res.status}`).toBeDefined();
    if (typeof response!.$ref === "string") response = resolve(response!.$ref) as Node;
    const mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    const media = (response!.content as Record<string, { schema: Node }>)[mediaType];
    expect(media, `${method} ${template} ${res.status}: ${mediaType} is not documented`).toBeDefined();
    const schema = JSON.parse(
      JSON.stringify(media!.schema).replaceAll('"#/components/', '"tca#/components/'),
    );
    const body = (await res.json()) as Node;
    const validate = validator.compile(schema as object);
    const ok = validate(body);
    expect(
      ok,
      `${method} ${template} ${res.status}: ${validator.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`,
    ).toBe(true);
    checked.add(`${method} ${template} ${res.status}`);
    return body;
  }
  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    ({ ca, coordinator, url } = await startHttpCa({ names: NAMES }));
    // Before the ceremony: health is 503 (not ready) with the same document.
    await conforms("GET", "/api/v1/health", await call("GET", "/api/v1/health"));
    const started = await call("POST", "/api/v1/ceremonies", ADMIN);
    ceremonyId = ((await conforms("POST", "/api/v1/ceremonies", started)) as { id: string }).id;
    await completeCeremony(ca, ceremonyId);
    for (const name of ["one.example.internal", "two.example.internal"]) {
      const res = await call("POST", "/api/v1/requests", REQUESTER, {
        csr: await makeCsr([name], name),
        profile: "server",
      });
      const { id, serial } = (await conforms("POST", "/api/v1/requests", res)) as {
        id: string;
        serial: string;
      };
      const view = await ca.services.requests.view(id);
      for (const who of ["alice", "bob"]) await ca.services.requests.decide(id, approval(ca, who, view));
      await exchangeUntil(ca, async () => (await ca.services.requests.view(id)).status === "issued");
      issued.push({ id, serial });
    }
  }, 120_000);

  afterAll(async () => {
    await coordinator?.close();
  });

  it("health (anonymous and admin), liveness and the change feed", async () => {
    const open = await conforms("GET", "/api/v1/health", await call("GET", "/api/v1/health"));
    expect(open.custodians).toBeUndefined();
    const full = await conforms("GET", "/api/v1/health", await call("GET", "/api/v1/health", ADMIN));
    expect(full.status).toBe("ok");
    expect(full.custodians).toHaveLength(3);
    await conforms("GET", "/api/v1/health/live", await call("GET", "/api/v1/health/live"));
    await conforms("GET", "/api/v1/changes", await call("GET", "/api/v1/changes?wait=0", ADMIN));
  });

  it("requests: list, one issued request with its approvals and signing history", async () => {
    const list = await conforms("GET", "/api/v1/requests", await call("GET", "/api/v1/requests", ADMIN));
    expect((list.requests as unknown[]).length).toBe(2);
    const view = await conforms(
      "GET",
      "/api/v1/requests/{id}",
      await call("GET", `/api/v1/requests/${issued[0]!.id}`, REQUESTER),
    );
    expect(view.status).toBe("issued");
    expect((view.approvals as unknown[]).length).toBe(2);
    expect(view.signing).not.toBeNull();
    const job = (view.signing as { job: string }).job;
    const path = `/api/v1/signing/jobs/${job}`;
    await conforms("GET", "/api/v1/signing/jobs/{id}", await call("GET", path, signed("carol", "GET", path)));
  });

  it("the certificate inventory: list and one certificate as JSON", async () => {
    const list = await conforms(
      "GET",
      "/api/v1/certificates",
      await call("GET", "/api/v1/certificates", ADMIN),
    );
    expect((list.certificates as unknown[]).length).toBe(2);
    await conforms(
      "GET",
      "/api/v1/certificates/{serial}",
      await call("GET", `/api/v1/certificates/${issued[0]!.serial}?format=json`, REQUESTER),
    );
  });

  it("the ceremony and its messages", async () => {
    const view = await conforms(
      "GET",
      "/api/v1/ceremonies/{id}",
      await call("GET", `/api/v1/ceremonies/${ceremonyId}`, ADMIN),
    );
    expect(view.status).toBe("complete");
    const path = `/api/v1/ceremonies/${ceremonyId}/messages?type=dkg/round1`;
    const messages = await conforms(
      "GET",
      "/api/v1/ceremonies/{id}/messages",
      await call("GET", path, signed("alice", "GET", path)),
    );
    expect((messages.messages as unknown[]).length).toBe(3);
  });

  it("the custodian exchange", async () => {
    const path = "/api/v1/custodians/exchange";
    const res = await call("POST", path, signed("alice", "POST", path), {
      custodian: "alice",
      instance: randomBytes(16).toString("hex"),
      envelopes: [],
      wait: 0,
      review: true,
    });
    await conforms("POST", path, res);
  });

  it("revocation and a renewal challenge", async () => {
    const revoked = await conforms(
      "POST",
      "/api/v1/certificates/{serial}/revoke",
      await call("POST", `/api/v1/certificates/${issued[1]!.serial}/revoke`, REQUESTER, {
        reason: "superseded",
      }),
    );
    expect(revoked.reason).toBe("superseded");
    const challenge = await call("POST", `/api/v1/certificates/${issued[0]!.serial}/renewal-challenge`);
    expect(challenge.status).toBe(201);
    await conforms("POST", "/api/v1/certificates/{serial}/renewal-challenge", challenge);
  });

  it("problem documents for 400, 401, 403 and 404", async () => {
    const bad = await conforms(
      "GET",
      "/api/v1/requests",
      await call("GET", "/api/v1/requests?status=bogus", ADMIN),
    );
    expect(bad.status).toBe(400);
    const anonymous = await conforms("GET", "/api/v1/requests", await call("GET", "/api/v1/requests"));
    expect(anonymous.status).toBe(401);
    const forbidden = await conforms(
      "GET",
      "/api/v1/ceremonies/{id}",
      await call("GET", `/api/v1/ceremonies/${ceremonyId}`, REQUESTER),
    );
    expect(forbidden.status).toBe(403);
    const missing = await conforms(
      "GET",
      "/api/v1/certificates/{serial}",
      await call("GET", "/api/v1/certificates/0a1b2c3d4e5f60718293?format=json", ADMIN),
    );
    expect(missing.status).toBe(404);
  });

  it("covered the main operations", () => {
    for (const op of [
      "GET /api/v1/health 200",
      "GET /api/v1/health 503",
      "POST /api/v1/requests 202",
      "GET /api/v1/requests/{id} 200",
      "GET /api/v1/certificates 200",
      "GET /api/v1/ceremonies/{id} 200",
      "POST /api/v1/custodians/exchange 200",
      "POST /api/v1/certificates/{serial}/revoke 200",
    ])
      expect(checked).toContain(op);
  });
});
