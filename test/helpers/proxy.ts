// A man-in-the-middle "coordinator" for tests: forwards every request to the real one and lets the
// test rewrite chosen responses, the way a compromised coordinator would.
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type Rewrite = (req: IncomingMessage, body: Buffer) => Buffer;

export async function startRewritingProxy(
  target: string,
  rewrite: Rewrite,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const up = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (upRes) => {
      const chunks: Buffer[] = [];
      upRes.on("data", (c: Buffer) => chunks.push(c));
      upRes.on("error", () => res.destroy());
      upRes.on("end", () => {
        const body = rewrite(req, Buffer.concat(chunks));
        res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, "content-length": String(body.length) });
        res.end(body);
      });
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Rewrites the JSON of GET responses whose path starts with `prefix`. */
export function rewriteJson<T>(prefix: string, fn: (json: T) => void, method = "GET"): Rewrite {
  return (req, body) => {
    if (req.method !== method || !req.url!.startsWith(prefix)) return body;
    const json = JSON.parse(body.toString()) as T;
    fn(json);
    return Buffer.from(JSON.stringify(json));
  };
}
