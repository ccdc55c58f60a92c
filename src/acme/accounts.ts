// PLACEHOLDER until accounts land.
import type { Router } from "express";
import type { AcmeContext } from "./context.ts";
export function registerAccountRoutes(_r: Router, _ctx: AcmeContext): void {}
