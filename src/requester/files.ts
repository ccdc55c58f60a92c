// Output files of `tca request`: checked before anything is generated or submitted, written without
// clobbering (unless forced), the private key with mode 0600.
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";

export class OutputFileError extends Error {}

/** Throws unless every path can be written: its directory exists and (without force) it does not. */
export function checkOutputs(paths: readonly string[], force: boolean): void {
  const seen = new Set<string>();
  for (const p of paths) {
    const abs = resolve(p);
    if (seen.has(abs)) throw new OutputFileError(`${p} is named as more than one output file`);
    seen.add(abs);
    const dir = dirname(abs);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new OutputFileError(`cannot write ${p}: directory ${dir} does not exist`);
    if (existsSync(abs)) {
      if (!force) throw new OutputFileError(`${p} already exists; use --force to overwrite it`);
      if (statSync(abs).isDirectory()) throw new OutputFileError(`${p} is a directory`);
    }
  }
}

/**
 * Writes `data` to a new file with `mode`. Without force an existing file is an error (even one
 * that appeared since checkOutputs); with force the file is replaced atomically, so a key never
 * sits in a file with looser permissions than asked.
 */
export function writeOutput(path: string, data: string, mode: number, force: boolean): void {
  if (!force) {
    try {
      writeFileSync(path, data, { flag: "wx", mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST")
        throw new OutputFileError(`${path} already exists; use --force to overwrite it`);
      throw e;
    }
    return;
  }
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, data, { flag: "wx", mode });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
