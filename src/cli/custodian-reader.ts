// The custodian commands that only read (`tca custodian requests`, `show`, `journal verify
// --check-coordinator`, `journal recover --accept-loss`) sign their reads with the custodian's
// identity key like every other custodian command (docs/security-model.md, "Who can read what"),
// so they unlock the keystore for it: the passphrase comes from --passphrase-file, TCA_PASSPHRASE
// or a prompt, as for approve.
import type { CoordinatorClient } from "../custodian/client.ts";
import { connectCustodian } from "../custodian/connect.ts";
import type { CustodianHome } from "../custodian/home.ts";
import { resolvePassphrase } from "../custodian/passphrase.ts";

/** A client whose reads carry this custodian's signature. Give `passphrase` if it is known already. */
export async function signedReader(
  home: CustodianHome,
  urls: string,
  o: { passphraseFile?: string; passphrase?: string } = {},
): Promise<CoordinatorClient> {
  const passphrase =
    o.passphrase ?? (await resolvePassphrase(o.passphraseFile ? { passphraseFile: o.passphraseFile } : {}));
  const secrets = await home.open(passphrase);
  const identity = {
    name: secrets.identity.name,
    signingSecret: new Uint8Array(Buffer.from(secrets.identity.signingSecret, "base64url")),
  };
  return connectCustodian({ urls, home, identity });
}
