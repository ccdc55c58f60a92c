// PLACEHOLDER until revokeCert lands.
import type { Router } from "express";
import type { AcmeContext } from "./context.ts";
export function registerRevocation(_r: Router, _ctx: AcmeContext): void {}
