// Loopback HTTP servers that behave like coordinators, replicas that are down, and proxies, for the
// HTTP client's failover tests. Each counts the requests that reached it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface TestServer {
  url: string;
  /** Requests that reached the server (their body fully received), as "METHOD path". */
  hits: string[];
  /** Bodies received, in order. */
  bodies: string[];
  close(): Promise<void>;
}

export type Behaviour = (req: IncomingMessage, res: ServerResponse, body: string, hit: number) => void;

const open: Server[] = [];

export async function startServer(behave: Behaviour): Promise<TestServer> {
  const hits: string[] = [];
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      hits.push(`${req.method} ${req.url}`);
      bodies.push(body);
      behave(req, res, body, hits.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  open.push(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    bodies,
    close: () => closeServer(server),
  };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map(closeServer));
}

/** A URL nothing listens on: a server is started for a free port, then closed. */
export async function refusedUrl(): Promise<string> {
  const s = await startServer(() => undefined);
  await s.close();
  return s.url;
}

export const json =
  (status: number, body: unknown): Behaviour =>
  (_req, res) => {
    res.writeHead(status, {
      "content-type": status >= 400 ? "application/problem+json" : "application/json",
    });
    res.end(JSON.stringify(body));
  };

export const problem = (status: number, code: string, detail: string): Behaviour =>
  json(status, { type: "about:blank", title: code, status, code, detail });

/** Reads the whole request, then drops the connection without answering. */
export const dropAfterBody: Behaviour = (req) => {
  req.socket.destroy();
};

/** Never answers. */
export const silent: Behaviour = () => undefined;
