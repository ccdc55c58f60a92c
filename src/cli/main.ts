// The `tca` command: thin wiring of the modules beneath. One file per command group, imported only
// when that group runs (program.ts), so `tca --version` and `tca --help` start in tens of ms.
import { buildProgram } from "./program.ts";

const program = await buildProgram(process.argv);
await program.parseAsync(process.argv);
