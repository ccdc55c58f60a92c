// PLACEHOLDER until finalize and certificate download land.
import type { Router } from "express";
import type { AcmeContext } from "./context.ts";
export function registerFinalizeRoutes(_r: Router, _ctx: AcmeContext): void {}
