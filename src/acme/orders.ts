// PLACEHOLDER until orders land.
import type { Router } from "express";
import type { AcmeContext } from "./context.ts";
export function registerOrderRoutes(_r: Router, _ctx: AcmeContext): void {}
