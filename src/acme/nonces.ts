// PLACEHOLDER until the nonce store lands (owned by the ACME accounts/JWS work).
import type { Router } from "express";
import type { AcmeContext } from "./context.ts";
export async function issueNonce(_ctx: AcmeContext): Promise<string> {
  throw new Error("not yet");
}
export function registerNonceRoutes(_r: Router, _ctx: AcmeContext): void {}
