// The `tca` command: thin wiring of the modules beneath. One file per command group.
import "reflect-metadata";
import { Command } from "commander";
import { registerServe } from "./commands/serve.ts";
import { registerCustodian } from "./commands/custodian.ts";
import { registerCeremony } from "./commands/ceremony.ts";
import { registerDev } from "./commands/dev.ts";
import { registerRequest } from "./commands/request.ts";

const program = new Command()
  .name("tca")
  .description("tca: a threshold certificate authority (FROST Ed25519 over a DKG key)")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerServe(program);
registerCustodian(program);
registerCeremony(program);
registerDev(program);
registerRequest(program);

await program.parseAsync(process.argv);
