// The public CA material the coordinator's services read: the root certificate, the group public
// key and its key id. Public only: the coordinator never holds key shares.
export interface CaMaterial {
  certificate(): Promise<Uint8Array | null>;
  keyId(): Promise<string | null>;
  publicKey(): Promise<Uint8Array | null>;
}
