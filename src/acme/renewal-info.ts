// PLACEHOLDER until ARI lands.
import type { Router } from "express";
import type { AcmeContext } from "./context.ts";
export function registerRenewalInfo(_r: Router, _ctx: AcmeContext): void {}
