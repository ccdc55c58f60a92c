// A minimal ACME client for tests of the server (src/acme/): it signs flattened JWS with jose
// exactly as RFC 8555 §6.2 asks, keeps the last Replay-Nonce, and lets a test break any rule on
// purpose (a wrong URL, a stale nonce, jwk where kid belongs). The real clients (lego, certbot) are
// exercised in test/e2e/acme-*.test.ts.
import {
  calculateJwkThumbprint,
  exportJWK,
  FlattenedSign,
  generateKeyPair,
  type CryptoKey,
  type JWK,
} from "jose";

export type AcmeAlg = "ES256" | "EdDSA" | "RS256";

export interface AcmeKey {
  alg: AcmeAlg;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function newAcmeKey(alg: AcmeAlg = "ES256"): Promise<AcmeKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  const jwk = await exportJWK(publicKey);
  return { alg, privateKey, jwk };
}

export interface AcmeResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON (objects and problem documents), else the text. */
  body: unknown;
  text: string;
}

export interface PostOptions {
  /** Sign with the key's JWK rather than the account's kid (newAccount, revokeCert by key). */
  jwk?: boolean;
  key?: AcmeKey;
  /** Overrides: a wrong URL or nonce in the protected header, an extra header field. */
  url?: string;
  nonce?: string;
  kid?: string;
  extraHeader?: Record<string, unknown>;
  /** A raw body instead of the JWS (malformed input tests). */
  rawBody?: string;
  contentType?: string;
}

export class TestAcmeClient {
  directory!: Record<string, string> & { meta?: Record<string, unknown> };
  kid: string | undefined;
  #nonce: string | undefined;

  constructor(
    readonly directoryUrl: string,
    public key: AcmeKey,
  ) {}

  static async create(directoryUrl: string, alg: AcmeAlg = "ES256"): Promise<TestAcmeClient> {
    const c = new TestAcmeClient(directoryUrl, await newAcmeKey(alg));
    const res = await fetch(directoryUrl);
    c.directory = (await res.json()) as TestAcmeClient["directory"];
    return c;
  }

  thumbprint(key = this.key): Promise<string> {
    return calculateJwkThumbprint(key.jwk, "sha256");
  }

  async keyAuthorization(token: string): Promise<string> {
    return `${token}.${await this.thumbprint()}`;
  }

  async newNonce(): Promise<string> {
    const res = await fetch(this.directory.newNonce!, { method: "HEAD" });
    const n = res.headers.get("replay-nonce");
    if (!n) throw new Error(`newNonce answered ${res.status} without a Replay-Nonce`);
    return n;
  }

  /** A flattened JWS over `payload` (null = POST-as-GET, an empty payload). */
  async sign(url: string, payload: unknown, o: PostOptions = {}): Promise<Record<string, string>> {
    const key = o.key ?? this.key;
    const nonce = o.nonce ?? this.#nonce ?? (await this.newNonce());
    this.#nonce = undefined;
    const header: Record<string, unknown> = { alg: key.alg, nonce, url: o.url ?? url, ...o.extraHeader };
    if (o.jwk || !(o.kid ?? this.kid)) header.jwk = key.jwk;
    else header.kid = o.kid ?? this.kid;
    const bytes = payload === null ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    const jws = await new FlattenedSign(bytes).setProtectedHeader(header).sign(key.privateKey);
    return jws as unknown as Record<string, string>;
  }

  async post(url: string, payload: unknown, o: PostOptions = {}): Promise<AcmeResponse> {
    const body = o.rawBody ?? JSON.stringify(await this.sign(url, payload, o));
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": o.contentType ?? "application/jose+json" },
      body,
    });
    const n = res.headers.get("replay-nonce");
    if (n) this.#nonce = n;
    const text = await res.text();
    let parsed: unknown = text;
    if (/json/.test(res.headers.get("content-type") ?? "")) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  /** newAccount; on success remembers the account URL as kid. */
  async register(payload: Record<string, unknown> = { termsOfServiceAgreed: true }): Promise<AcmeResponse> {
    const res = await this.post(this.directory.newAccount!, payload, { jwk: true });
    if (res.status === 201 || res.status === 200) this.kid = res.headers.get("location") ?? undefined;
    return res;
  }

  /** RFC 8555 §7.3.4: the externalAccountBinding value for newAccount, MACed with the EAB key. */
  async externalAccountBinding(keyId: string, hmacKeyB64url: string): Promise<Record<string, string>> {
    const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(this.key.jwk)))
      .setProtectedHeader({ alg: "HS256", kid: keyId, url: this.directory.newAccount! })
      .sign(Buffer.from(hmacKeyB64url, "base64url"));
    return jws as unknown as Record<string, string>;
  }
}
