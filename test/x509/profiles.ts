// Profiles as ca-config would declare them (parsed through the real schema, so defaults apply).
import { ProfileSchema, type Profile } from "../../src/config/schema.ts";

export const serverProfile: Profile = ProfileSchema.parse({
  maxValidityHours: 2160,
  defaultValidityHours: 720,
  keyTypes: ["rsa", "ec-p256", "ec-p384", "ec-p521", "ed25519", "ed448"],
  keyUsage: ["digitalSignature", "keyEncipherment"],
  extKeyUsage: ["serverAuth", "clientAuth"],
  sans: { dns: true, ip: true, email: true, uri: true, max: 10, requireOne: true },
});

export const intermediateProfile: Profile = ProfileSchema.parse({
  maxValidityHours: 87600,
  defaultValidityHours: 43800,
  keyTypes: ["ed25519"],
  keyUsage: ["keyCertSign", "cRLSign", "digitalSignature"],
  ca: true,
  pathLen: 0,
  nameConstraints: { permittedDns: ["svc.internal", ".example.com"], excludedDns: ["bad.svc.internal"] },
});

/** The OCSP responder's profile as ca-config/ca.yaml declares it (docs/ocsp.md). */
export const ocspResponderProfile: Profile = ProfileSchema.parse({
  maxValidityHours: 168,
  defaultValidityHours: 96,
  keyTypes: ["ec-p256"],
  keyUsage: ["digitalSignature"],
  extKeyUsage: ["ocspSigning"],
  ocspNoCheck: true,
});
