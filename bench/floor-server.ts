// Child-process entry of the single-key floor (bench/floor.ts), so the floor runs in its own process
// like the coordinator and its CPU is measured the same way. Usage: floor-server.ts CA_CONFIG_PATH.
// Prints one JSON line {"url", "rootPem"} on stdout once listening; SIGTERM stops it.
import { loadCaConfig } from "../src/config/load.ts";
import { startFloor } from "./floor.ts";

const path = process.argv[2];
if (!path) {
  process.stderr.write("usage: floor-server.ts CA_CONFIG_PATH\n");
  process.exit(2);
}
const floor = await startFloor(loadCaConfig(path));
process.stdout.write(JSON.stringify({ url: floor.url, rootPem: floor.rootPem }) + "\n");
const stop = () => void floor.close().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
