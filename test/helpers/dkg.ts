// An in-memory DKG among named participants, for unit tests that need real key shares.
import { identifierForName } from "../../src/threshold/suite.ts";
import { dkgPart1, dkgPart2, dkgPart3 } from "../../src/threshold/dkg.ts";

export function inMemoryDkg(names: string[], threshold: number) {
  const parts = names.map((name) => ({
    name,
    id: identifierForName(name),
    ...dkgPart1(identifierForName(name), threshold, names.length),
  }));
  const sent = new Map(
    parts.map((p) => [
      p.id,
      dkgPart2(
        p.state,
        parts.filter((o) => o !== p).map((o) => o.round1),
      ),
    ]),
  );
  return parts.map((p) => {
    const others = parts.filter((o) => o !== p);
    const received = Object.fromEntries(others.map((o) => [o.id, sent.get(o.id)![p.id]!]));
    return {
      name: p.name,
      id: p.id,
      round1: p.round1,
      others,
      received,
      key: dkgPart3(
        p.state,
        others.map((o) => o.round1),
        received,
      ),
    };
  });
}
